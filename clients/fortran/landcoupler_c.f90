!> landcoupler_c: the bind(c) interfaces of clients/c/include/landcoupler.h used by
!> landcoupler_mod (not meant to be used directly: call landcoupler_mod's procedures).
!> uint32/uint64 arguments of the C API are passed as c_int32_t/c_int64_t (values < 2^31/2^63).
module landcoupler_c
  use iso_c_binding
  implicit none
  public

  interface
    function c_session_new(target, token) bind(c, name="lc_session_new")
      import :: c_ptr, c_char
      character(kind=c_char), intent(in) :: target(*), token(*)
      type(c_ptr) :: c_session_new
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
  interface
    function c_set_tls(s, root_ca, key, cert, server_name) bind(c, name="lc_set_tls")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: s
      character(kind=c_char), intent(in) :: root_ca(*), key(*), cert(*), server_name(*)
      integer(c_int) :: c_set_tls
    end function
    function c_set_stream(s, on, split_bytes) bind(c, name="lc_set_stream")
      import :: c_ptr, c_int, c_int64_t
      type(c_ptr), value :: s
      integer(c_int), value :: on
      integer(c_int64_t), value :: split_bytes
      integer(c_int) :: c_set_stream
    end function
    function c_options_new() bind(c, name="lc_options_new")
      import :: c_ptr
      type(c_ptr) :: c_options_new
    end function
    subroutine c_options_free(o) bind(c, name="lc_options_free")
      import :: c_ptr
      type(c_ptr), value :: o
    end subroutine
    function c_options_set_backend(o, name) bind(c, name="lc_options_set_backend")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: o
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int) :: c_options_set_backend
    end function
    function c_options_set_run(o, run_id, rank) bind(c, name="lc_options_set_run")
      import :: c_ptr, c_int, c_char, c_int32_t
      type(c_ptr), value :: o
      character(kind=c_char), intent(in) :: run_id(*)
      integer(c_int32_t), value :: rank
      integer(c_int) :: c_options_set_run
    end function
    function c_options_set_land_cover(o, name) bind(c, name="lc_options_set_land_cover")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: o
      character(kind=c_char), intent(in) :: name(*)
      integer(c_int) :: c_options_set_land_cover
    end function
    function c_options_set_fractions(o, cells, nclasses, fractions, class_major) &
        bind(c, name="lc_options_set_land_cover_fractions")
      import :: c_ptr, c_int, c_int32_t, c_int64_t, c_double
      type(c_ptr), value :: o
      integer(c_int64_t), value :: cells
      integer(c_int32_t), value :: nclasses
      real(c_double), intent(in) :: fractions(*)
      integer(c_int), value :: class_major
      integer(c_int) :: c_options_set_fractions
    end function
    function c_options_set_members(o, members, spread) bind(c, name="lc_options_set_members")
      import :: c_ptr, c_int, c_int32_t
      type(c_ptr), value :: o
      integer(c_int32_t), value :: members
      integer(c_int), value :: spread
      integer(c_int) :: c_options_set_members
    end function
    function c_options_set_checkpoint(o, url, every) bind(c, name="lc_options_set_checkpoint")
      import :: c_ptr, c_int, c_char, c_int32_t
      type(c_ptr), value :: o
      character(kind=c_char), intent(in) :: url(*)
      integer(c_int32_t), value :: every
      integer(c_int) :: c_options_set_checkpoint
    end function
    function c_options_set_record(o, url) bind(c, name="lc_options_set_record")
      import :: c_ptr, c_int, c_char
      type(c_ptr), value :: o
      character(kind=c_char), intent(in) :: url(*)
      integer(c_int) :: c_options_set_record
    end function
    function c_options_set_record_options(o, codec, config, chunk_bytes, shard_chunks, lossy) &
        bind(c, name="lc_options_set_record_options")
      import :: c_ptr, c_int, c_char, c_int32_t, c_int64_t
      type(c_ptr), value :: o
      character(kind=c_char), intent(in) :: codec(*), config(*)
      integer(c_int64_t), value :: chunk_bytes
      integer(c_int32_t), value :: shard_chunks
      integer(c_int), value :: lossy
      integer(c_int) :: c_options_set_record_options
    end function
    function c_options_set_heights(o, wind, temperature) bind(c, name="lc_options_set_heights")
      import :: c_ptr, c_int, c_double
      type(c_ptr), value :: o
      real(c_double), value :: wind, temperature
      integer(c_int) :: c_options_set_heights
    end function
    function c_open_with(s, cells, lat, lon, start, timestep, outputs, o) bind(c, name="lc_open_with")
      import :: c_ptr, c_int, c_int64_t, c_double, c_char
      type(c_ptr), value :: s, o
      integer(c_int64_t), value :: cells, timestep
      real(c_double), intent(in) :: lat(*), lon(*)
      character(kind=c_char), intent(in) :: start(*), outputs(*)
      integer(c_int) :: c_open_with
    end function
  end interface

end module landcoupler_c
