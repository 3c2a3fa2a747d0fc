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
!> Optional lc_open arguments add land-cover fractions (cells, 8), a record URL and its codec,
!> checkpoints, ensemble members, the Exchange stream (stream=.true.) and TLS (tls_root_ca, and
!> tls_key + tls_cert for mutual TLS; PEM text or file paths) with a bearer token.
!>
!> forcing(cells, nforcing) and outputs(cells, noutputs) are contiguous real(c_double) arrays,
!> column k holding the k-th name. ierr is 0 or the gRPC status code (3 INVALID_ARGUMENT,
!> 9 FAILED_PRECONDITION, 14 UNAVAILABLE, ...) or 100 (client-side); lc_error_field/rule/message
!> say which field and rule the server refused.
module landcoupler_mod
  use iso_c_binding
  use iso_fortran_env, only: int64
  use landcoupler_c
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

  !> A handle on `target` with its transport settings (TLS, stream), made once per session.
  subroutine ensure(session, target, ierr, token, tls_root_ca, tls_key, tls_cert, &
                    tls_server_name, stream, split_bytes)
    type(landcoupler_session), intent(inout) :: session
    character(len=*), intent(in) :: target
    integer, intent(out) :: ierr
    character(len=*), intent(in), optional :: token, tls_root_ca, tls_key, tls_cert, &
                                              tls_server_name
    logical, intent(in), optional :: stream
    integer(int64), intent(in), optional :: split_bytes
    integer(c_int64_t) :: split
    ierr = 0
    if (.not. c_associated(session%handle)) then
      session%handle = c_session_new(cstr(target), opt(token))
      if (.not. c_associated(session%handle)) then
        ierr = 100
        return
      end if
      if (present(tls_root_ca) .or. present(tls_key) .or. present(tls_cert)) then
        ierr = int(c_set_tls(session%handle, opt(tls_root_ca), opt(tls_key), opt(tls_cert), &
                             opt(tls_server_name)))
        if (ierr /= 0) return
      end if
    end if
    if (present(stream)) then
      split = 4194304_c_int64_t
      if (present(split_bytes)) split = int(split_bytes, c_int64_t)
      ierr = int(c_set_stream(session%handle, merge(1_c_int, 0_c_int, stream), split))
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
  !> land_cover_fractions(cells, nclasses): per-cell class fractions (instead of land_cover).
  !> record_codec / record_codec_config / record_chunk_bytes: RecordOptions of record_url.
  !> stream / split_bytes: steps over the Exchange stream. tls_*: TLS (see lc_set_tls in C).
  !> height_wind / height_temperature: heights of the forcing above the zero-plane displacement
  !> (m; absent = 10 and 2), e.g. the model's lowest level (see lc_options_set_heights in C).
  subroutine lc_open(session, target, lat, lon, start, timestep, outputs, ierr, backend, &
                     land_cover, run_id, rank, record_url, checkpoint_url, checkpoint_every, &
                     token, land_cover_fractions, members, record_codec, record_codec_config, &
                     record_chunk_bytes, stream, split_bytes, tls_root_ca, tls_key, tls_cert, &
                     tls_server_name, height_wind, height_temperature)
    type(landcoupler_session), intent(inout) :: session
    character(len=*), intent(in) :: target, start
    real(c_double), intent(in) :: lat(:), lon(:)
    integer(int64), intent(in) :: timestep
    character(len=*), intent(in) :: outputs(:)
    integer, intent(out) :: ierr
    character(len=*), intent(in), optional :: backend, land_cover, run_id, record_url, &
      checkpoint_url, token, record_codec, record_codec_config, tls_root_ca, tls_key, &
      tls_cert, tls_server_name
    integer, intent(in), optional :: rank, checkpoint_every, members
    real(c_double), intent(in), contiguous, optional :: land_cover_fractions(:, :)
    integer(int64), intent(in), optional :: record_chunk_bytes, split_bytes
    logical, intent(in), optional :: stream
    real(c_double), intent(in), optional :: height_wind, height_temperature
    type(c_ptr) :: o
    real(c_double) :: zu, zt
    integer(c_int32_t) :: r, every
    integer(c_int64_t) :: chunk
    integer :: rc
    call ensure(session, target, ierr, token, tls_root_ca, tls_key, tls_cert, tls_server_name, &
                stream, split_bytes)
    if (ierr /= 0) return
    o = c_options_new()
    if (.not. c_associated(o)) then
      ierr = 100
      return
    end if
    r = 0
    every = 0
    chunk = 0
    if (present(rank)) r = int(rank, c_int32_t)
    if (present(checkpoint_every)) every = int(checkpoint_every, c_int32_t)
    if (present(record_chunk_bytes)) chunk = int(record_chunk_bytes, c_int64_t)
    rc = 0
    rc = max(rc, int(c_options_set_backend(o, opt(backend))))
    rc = max(rc, int(c_options_set_run(o, opt(run_id), r)))
    rc = max(rc, int(c_options_set_land_cover(o, opt(land_cover))))
    if (present(land_cover_fractions)) then
      if (size(land_cover_fractions, 1) /= size(lat)) rc = 100
      rc = max(rc, int(c_options_set_fractions(o, int(size(land_cover_fractions, 1), c_int64_t), &
               int(size(land_cover_fractions, 2), c_int32_t), land_cover_fractions, 1_c_int)))
    end if
    if (present(members)) rc = max(rc, int(c_options_set_members(o, int(members, c_int32_t), 0_c_int)))
    if (present(height_wind) .or. present(height_temperature)) then
      zu = 10.0_c_double
      zt = 2.0_c_double
      if (present(height_wind)) zu = height_wind
      if (present(height_temperature)) zt = height_temperature
      rc = max(rc, int(c_options_set_heights(o, zu, zt)))
    end if
    rc = max(rc, int(c_options_set_checkpoint(o, opt(checkpoint_url), every)))
    rc = max(rc, int(c_options_set_record(o, opt(record_url))))
    if (present(record_codec) .or. present(record_chunk_bytes)) &
      rc = max(rc, int(c_options_set_record_options(o, opt(record_codec), opt(record_codec_config), &
                                                    chunk, 0_c_int32_t, 0_c_int)))
    if (rc /= 0) then
      ierr = 100
    else
      ierr = int(c_open_with(session%handle, int(size(lat), c_int64_t), lat, lon, cstr(start), &
                             int(timestep, c_int64_t), cjoin(outputs), o))
    end if
    call c_options_free(o)
    if (ierr == 0) session%cells = c_cells(session%handle)
  end subroutine

  !> Open a session by resuming the checkpoint at `url` (transport options as in lc_open).
  subroutine lc_resume(session, target, url, ierr, token, stream, split_bytes, tls_root_ca, &
                       tls_key, tls_cert, tls_server_name)
    type(landcoupler_session), intent(inout) :: session
    character(len=*), intent(in) :: target, url
    integer, intent(out) :: ierr
    character(len=*), intent(in), optional :: token, tls_root_ca, tls_key, tls_cert, &
                                              tls_server_name
    logical, intent(in), optional :: stream
    integer(int64), intent(in), optional :: split_bytes
    call ensure(session, target, ierr, token, tls_root_ca, tls_key, tls_cert, tls_server_name, &
                stream, split_bytes)
    if (ierr /= 0) return
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
