!> landcoupler_mod: Fortran 2008 client of the landcoupler gRPC service (iso_c_binding over
!> the C API in clients/c/include/landcoupler.h; docs/clients.md).
!>
!>   use landcoupler_mod
!>   type(landcoupler_session) :: s
!>   call lc_open(s, "127.0.0.1:50051", lat, lon, "2001-01-01T05:00:00Z", 3600_int64, &
!>                [character(8) :: "hfls", "hfss"], ierr, run_id="run-1", rank=rank)
!>   call lc_step(s, k, names, forcing, [character(8) :: "hfls", "hfss"], outputs, ierr)
!>   if (ierr /= 0) print *, lc_error_message(s)
!>   call lc_checkpoint(s, ierr) ; call lc_close(s, ierr)
!>
!> forcing(cells, nforcing) and outputs(cells, noutputs) are contiguous real(c_double) arrays,
!> column k holding the k-th name. ierr is 0 or the gRPC status code (3 INVALID_ARGUMENT,
!> 9 FAILED_PRECONDITION, 14 UNAVAILABLE, ...) or 100 (client-side); lc_error_field/rule/message
!> say which field and rule the server refused.
module landcoupler_mod
  use iso_c_binding
  use iso_fortran_env, only: int64
  implicit none
  private
  public :: landcoupler_session, lc_open, lc_resume, lc_step, lc_checkpoint, lc_close, &
            lc_error_message, lc_error_field, lc_error_rule, lc_next_index

  type :: landcoupler_session
    type(c_ptr) :: handle = c_null_ptr
    integer(int64) :: cells = 0
  end type

  !> lc_step(session, index, forcing_names, forcing, output_names, outputs, ierr) with
  !> real(c_double) or real(c_float) arrays (float32 forcing is sent as float32).
  interface lc_step
    module procedure lc_step_f64, lc_step_f32
  end interface

  interface
    function c_session_new(target, token) bind(c, name="lc_session_new")
      import :: c_ptr, c_char
      character(kind=c_char), intent(in) :: target(*), token(*)
      type(c_ptr) :: c_session_new
    end function
    function c_open(s, cells, lat, lon, start, timestep, backend, land_cover, outputs, run_id, &
                    rank, record_url, checkpoint_url, checkpoint_every) bind(c, name="lc_open")
      import :: c_ptr, c_int, c_int32_t, c_int64_t, c_double, c_char
      type(c_ptr), value :: s
      integer(c_int64_t), value :: cells, timestep
      real(c_double), intent(in) :: lat(*), lon(*)
      character(kind=c_char), intent(in) :: start(*), backend(*), land_cover(*), outputs(*), &
                                            run_id(*), record_url(*), checkpoint_url(*)
      integer(c_int32_t), value :: rank, checkpoint_every
      integer(c_int) :: c_open
    end function
    function c_resume(s, url) bind(c, name="lc_resume")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: s
      character(kind=c_char), intent(in) :: url(*)
      integer(c_int) :: c_resume
    end function
    function c_step(s, index, fnames, forcing, n, onames, outputs) bind(c, name="lc_step")
      import :: c_ptr, c_int, c_int64_t, c_double, c_char
      type(c_ptr), value :: s
      integer(c_int64_t), value :: index, n
      character(kind=c_char), intent(in) :: fnames(*), onames(*)
      real(c_double), intent(in) :: forcing(*)
      real(c_double), intent(inout) :: outputs(*)
      integer(c_int) :: c_step
    end function
    function c_step_f32(s, index, fnames, forcing, n, onames, outputs) bind(c, name="lc_step_f32")
      import :: c_ptr, c_int, c_int64_t, c_float, c_char
      type(c_ptr), value :: s
      integer(c_int64_t), value :: index, n
      character(kind=c_char), intent(in) :: fnames(*), onames(*)
      real(c_float), intent(in) :: forcing(*)
      real(c_float), intent(inout) :: outputs(*)
      integer(c_int) :: c_step_f32
    end function
    function c_checkpoint(s, url, out, outlen) bind(c, name="lc_checkpoint")
      import :: c_ptr, c_int, c_char, c_size_t
      type(c_ptr), value :: s
      character(kind=c_char), intent(in) :: url(*)
      character(kind=c_char), intent(inout) :: out(*)
      integer(c_size_t), value :: outlen
      integer(c_int) :: c_checkpoint
    end function
    function c_close(s) bind(c, name="lc_close")
      import :: c_ptr, c_int
      type(c_ptr), value :: s
      integer(c_int) :: c_close
    end function
    subroutine c_free(s) bind(c, name="lc_session_free")
      import :: c_ptr
      type(c_ptr), value :: s
    end subroutine
    function c_cells(s) bind(c, name="lc_cells")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: s
      integer(c_int64_t) :: c_cells
    end function
    function c_next_index(s) bind(c, name="lc_next_index")
      import :: c_ptr, c_int64_t
      type(c_ptr), value :: s
      integer(c_int64_t) :: c_next_index
    end function
    function c_err(s) bind(c, name="lc_error_message")
      import :: c_ptr
      type(c_ptr), value :: s
      type(c_ptr) :: c_err
    end function
    function c_field(s) bind(c, name="lc_error_field")
      import :: c_ptr
      type(c_ptr), value :: s
      type(c_ptr) :: c_field
    end function
    function c_rule(s) bind(c, name="lc_error_rule")
      import :: c_ptr
      type(c_ptr), value :: s
      type(c_ptr) :: c_rule
    end function
    function c_strlen(p) bind(c, name="strlen")
      import :: c_ptr, c_size_t
      type(c_ptr), value :: p
      integer(c_size_t) :: c_strlen
    end function
  end interface

contains

  !> A NUL-terminated copy of a Fortran string (trailing blanks dropped).
  pure function cstr(s) result(out)
    character(len=*), intent(in) :: s
    character(kind=c_char, len=:), allocatable :: out
    out = trim(s) // c_null_char
  end function

  !> "a,b,c" + NUL from a character array (each element trimmed).
  pure function cjoin(names) result(out)
    character(len=*), intent(in) :: names(:)
    character(kind=c_char, len=:), allocatable :: out
    integer :: i
    out = ""
    do i = 1, size(names)
      if (i > 1) out = out // ","
      out = out // trim(adjustl(names(i)))
    end do
    out = out // c_null_char
  end function

  function fstr(p) result(out)
    type(c_ptr), intent(in) :: p
    character(len=:), allocatable :: out
    character(kind=c_char), pointer :: chars(:)
    integer :: i, n
    if (.not. c_associated(p)) then
      out = ""
      return
    end if
    n = int(c_strlen(p))
    call c_f_pointer(p, chars, [n])
    allocate(character(len=n) :: out)
    do i = 1, n
      out(i:i) = chars(i)
    end do
  end function

  subroutine ensure(session, target, token)
    type(landcoupler_session), intent(inout) :: session
    character(len=*), intent(in) :: target
    character(len=*), intent(in), optional :: token
    if (c_associated(session%handle)) return
    if (present(token)) then
      session%handle = c_session_new(cstr(target), cstr(token))
    else
      session%handle = c_session_new(cstr(target), cstr(""))
    end if
  end subroutine

  function opt(s) result(out)
    character(len=*), intent(in), optional :: s
    character(kind=c_char, len=:), allocatable :: out
    if (present(s)) then
      out = cstr(s)
    else
      out = c_null_char
    end if
  end function

  !> Open a session on the cells lat(:), lon(:) (degrees) at `target` ("host:port").
  subroutine lc_open(session, target, lat, lon, start, timestep, outputs, ierr, backend, &
                     land_cover, run_id, rank, record_url, checkpoint_url, checkpoint_every, token)
    type(landcoupler_session), intent(inout) :: session
    character(len=*), intent(in) :: target, start
    real(c_double), intent(in) :: lat(:), lon(:)
    integer(int64), intent(in) :: timestep
    character(len=*), intent(in) :: outputs(:)
    integer, intent(out) :: ierr
    character(len=*), intent(in), optional :: backend, land_cover, run_id, record_url, &
                                              checkpoint_url, token
    integer, intent(in), optional :: rank, checkpoint_every
    integer(c_int32_t) :: r, every
    call ensure(session, target, token)
    if (.not. c_associated(session%handle)) then
      ierr = 100
      return
    end if
    r = 0
    every = 0
    if (present(rank)) r = int(rank, c_int32_t)
    if (present(checkpoint_every)) every = int(checkpoint_every, c_int32_t)
    ierr = int(c_open(session%handle, int(size(lat), c_int64_t), lat, lon, cstr(start), &
                      int(timestep, c_int64_t), opt(backend), opt(land_cover), cjoin(outputs), &
                      opt(run_id), r, opt(record_url), opt(checkpoint_url), every))
    if (ierr == 0) session%cells = c_cells(session%handle)
  end subroutine

  !> Open a session by resuming the checkpoint at `url`.
  subroutine lc_resume(session, target, url, ierr, token)
    type(landcoupler_session), intent(inout) :: session
    character(len=*), intent(in) :: target, url
    integer, intent(out) :: ierr
    character(len=*), intent(in), optional :: token
    call ensure(session, target, token)
    if (.not. c_associated(session%handle)) then
      ierr = 100
      return
    end if
    ierr = int(c_resume(session%handle, cstr(url)))
    if (ierr == 0) session%cells = c_cells(session%handle)
  end subroutine

  !> One step: forcing(n, size(forcing_names)) -> outputs(cells, size(output_names)).
  subroutine lc_step_f64(session, index, forcing_names, forcing, output_names, outputs, ierr)
    type(landcoupler_session), intent(inout) :: session
    integer(int64), intent(in) :: index
    character(len=*), intent(in) :: forcing_names(:), output_names(:)
    real(c_double), intent(in), contiguous :: forcing(:, :)
    real(c_double), intent(inout), contiguous :: outputs(:, :)
    integer, intent(out) :: ierr
    if (.not. shapes_ok(session, size(forcing, 2), size(forcing_names), size(outputs, 1), &
                        size(outputs, 2), size(output_names))) then
      ierr = 100
      return
    end if
    ierr = int(c_step(session%handle, int(index, c_int64_t), cjoin(forcing_names), forcing, &
                      int(size(forcing, 1), c_int64_t), cjoin(output_names), outputs))
  end subroutine

  !> The same with real(c_float) forcing and outputs.
  subroutine lc_step_f32(session, index, forcing_names, forcing, output_names, outputs, ierr)
    type(landcoupler_session), intent(inout) :: session
    integer(int64), intent(in) :: index
    character(len=*), intent(in) :: forcing_names(:), output_names(:)
    real(c_float), intent(in), contiguous :: forcing(:, :)
    real(c_float), intent(inout), contiguous :: outputs(:, :)
    integer, intent(out) :: ierr
    if (.not. shapes_ok(session, size(forcing, 2), size(forcing_names), size(outputs, 1), &
                        size(outputs, 2), size(output_names))) then
      ierr = 100
      return
    end if
    ierr = int(c_step_f32(session%handle, int(index, c_int64_t), cjoin(forcing_names), forcing, &
                          int(size(forcing, 1), c_int64_t), cjoin(output_names), outputs))
  end subroutine

  !> The arrays match the names and the session (else ierr 100 and nothing is sent).
  logical function shapes_ok(session, nforcing, nfnames, ocells, noutputs, nonames)
    type(landcoupler_session), intent(in) :: session
    integer, intent(in) :: nforcing, nfnames, ocells, noutputs, nonames
    shapes_ok = c_associated(session%handle) .and. nforcing == nfnames .and. &
                noutputs == nonames .and. ocells == session%cells
  end function

  !> Write a checkpoint (to `url`, else the session's checkpoint_url); `written` gets its URL.
  subroutine lc_checkpoint(session, ierr, url, written)
    type(landcoupler_session), intent(inout) :: session
    integer, intent(out) :: ierr
    character(len=*), intent(in), optional :: url
    character(len=*), intent(out), optional :: written
    character(kind=c_char) :: buf(4096)
    integer :: i
    buf = c_null_char
    ierr = int(c_checkpoint(session%handle, opt(url), buf, int(size(buf), c_size_t)))
    if (present(written)) then
      written = ""
      do i = 1, min(len(written), size(buf))
        if (buf(i) == c_null_char) exit
        written(i:i) = buf(i)
      end do
    end if
  end subroutine

  !> Close the session on the server and free the handle.
  subroutine lc_close(session, ierr)
    type(landcoupler_session), intent(inout) :: session
    integer, intent(out) :: ierr
    ierr = 0
    if (.not. c_associated(session%handle)) return
    ierr = int(c_close(session%handle))
    if (ierr == 0) then
      call c_free(session%handle)
      session%handle = c_null_ptr
    end if
  end subroutine

  integer(int64) function lc_next_index(session)
    type(landcoupler_session), intent(in) :: session
    lc_next_index = c_next_index(session%handle)
  end function

  !> The last error's message ("field 'tas': rule valid_range: ...").
  function lc_error_message(session) result(msg)
    type(landcoupler_session), intent(in) :: session
    character(len=:), allocatable :: msg
    if (.not. c_associated(session%handle)) then
      msg = "no session handle"
    else
      msg = fstr(c_err(session%handle))
    end if
  end function

  function lc_error_field(session) result(msg)
    type(landcoupler_session), intent(in) :: session
    character(len=:), allocatable :: msg
    msg = ""
    if (c_associated(session%handle)) msg = fstr(c_field(session%handle))
  end function

  function lc_error_rule(session) result(msg)
    type(landcoupler_session), intent(in) :: session
    character(len=:), allocatable :: msg
    msg = ""
    if (c_associated(session%handle)) msg = fstr(c_rule(session%handle))
  end function

end module landcoupler_mod
