!> Fortran test of the session options, stream and TLS (driven by clients/test/features.py):
!> mutual TLS + bearer token + Exchange stream (split into one frame per field), land-cover
!> fractions of the first 4 cells (DIR/cover.bin), a zstd record at DIR/rec_f.zarr, 48 steps
!> each resent once -> DIR/f_feat_out.bin; checkpoint after step 23, resume (TLS + stream) and
!> steps 24..47 -> DIR/f_feat_resume.bin; refusals (a wrong CA, bad fractions, a wind height
!> above the range the torchscript backend's flux-lstm was trained at) -> DIR/f_feat_errors.txt.
!>   test_f_features TARGET DIR CA KEY CERT WRONG_CA TOKEN
program test_f_features
  use iso_c_binding, only: c_double
  use iso_fortran_env, only: int64
  use landcoupler_mod
  implicit none
  integer, parameter :: nc = 4, ncall = 16, nv = 7, nt = 48, no = 4, nk = 8
  character(len=8), parameter :: fnames(nv) = [character(len=8) :: "tas", "huss", "ps", &
                                  "sfcWind", "pr", "rsds", "rlds"]
  character(len=8), parameter :: onames(no) = [character(len=8) :: "hfls", "hfss", "ts", "rlus"]
  character(len=*), parameter :: start = "2001-01-01T05:00:00Z"
  real(c_double) :: grid(ncall, 2), allforcing(ncall, nv, nt), cover(nk, ncall)
  real(c_double) :: frac(nc, nk), forcing(nc, nv), outputs(nc, no), again(nc, no)
  type(landcoupler_session) :: s, resumed, bad
  character(len=4096) :: target, dir, ca, key, cert, wrong_ca, token, url
  integer :: ierr, t, u, log, failures

  call get_command_argument(1, target)
  call get_command_argument(2, dir)
  call get_command_argument(3, ca)
  call get_command_argument(4, key)
  call get_command_argument(5, cert)
  call get_command_argument(6, wrong_ca)
  call get_command_argument(7, token)
  failures = 0
  open(newunit=u, file=trim(dir)//"/grid.bin", access="stream", form="unformatted", status="old")
  read(u) grid
  close(u)
  open(newunit=u, file=trim(dir)//"/forcing.bin", access="stream", form="unformatted", status="old")
  read(u) allforcing
  close(u)
  open(newunit=u, file=trim(dir)//"/cover.bin", access="stream", form="unformatted", status="old")
  read(u) cover  ! (16, 8) in C order = cover(8, 16) here
  close(u)
  frac = transpose(cover(:, 1:nc))  ! (cells, classes), column k = class k

  call lc_open(s, trim(target), grid(1:nc, 1), grid(1:nc, 2), start, 3600_int64, onames, ierr, &
               run_id="f-tls", land_cover_fractions=frac, record_url=trim(dir)// &
               "/rec_f.zarr", record_codec="zstd", record_codec_config='{"level": 3}', &
               token=trim(token), tls_root_ca=trim(ca), tls_key=trim(key), tls_cert=trim(cert), &
               stream=.true., split_bytes=0_int64)
  if (ierr /= 0) then
    print *, "open over mTLS failed:", ierr, lc_error_message(s)
    stop 1
  end if
  open(newunit=u, file=trim(dir)//"/f_feat_out.bin", access="stream", form="unformatted", &
       status="replace")
  do t = 1, nt
    forcing = allforcing(1:nc, :, t)
    call lc_step(s, int(t - 1, int64), fnames, forcing, onames, outputs, ierr)
    if (ierr /= 0) failures = failures + 1
    call lc_step(s, int(t - 1, int64), fnames, forcing, onames, again, ierr)
    if (ierr /= 0 .or. any(again /= outputs)) failures = failures + 1
    write(u) outputs
    if (t == 24) then
      call lc_checkpoint(s, ierr, url="file://"//trim(dir)//"/ckpt/f-tls.ckpt", written=url)
      if (ierr /= 0) failures = failures + 1
    end if
  end do
  close(u)
  call lc_close(s, ierr)
  if (ierr /= 0) failures = failures + 1

  call lc_resume(resumed, trim(target), trim(url), ierr, token=trim(token), tls_root_ca=trim(ca), &
                 tls_key=trim(key), tls_cert=trim(cert), stream=.true.)
  if (ierr /= 0 .or. lc_next_index(resumed) /= 24) then
    print *, "resume over mTLS failed:", ierr, lc_error_message(resumed)
    failures = failures + 1
  else
    open(newunit=u, file=trim(dir)//"/f_feat_resume.bin", access="stream", form="unformatted", &
         status="replace")
    do t = 25, nt
      forcing = allforcing(1:nc, :, t)
      call lc_step(resumed, int(t - 1, int64), fnames, forcing, onames, outputs, ierr)
      if (ierr /= 0) failures = failures + 1
      write(u) outputs
    end do
    close(u)
    call lc_close(resumed, ierr)
  end if

  open(newunit=log, file=trim(dir)//"/f_feat_errors.txt", status="replace")
  call lc_open(bad, trim(target), grid(1:nc, 1), grid(1:nc, 2), start, 3600_int64, onames, ierr, &
               token=trim(token), tls_root_ca=trim(wrong_ca), tls_key=trim(key), tls_cert=trim(cert))
  write(log, "(a,1x,i0,1x,a,1x,a)") "wrong_ca", ierr, lc_error_field(bad), lc_error_rule(bad)
  print "(a,i0,a)", "fortran error case wrong_ca -> ", ierr, ": "//lc_error_message(bad)
  call lc_close(bad, ierr)
  frac(1, 1) = frac(1, 1) + 0.5d0
  call lc_open(bad, trim(target), grid(1:nc, 1), grid(1:nc, 2), start, 3600_int64, onames, ierr, &
               token=trim(token), tls_root_ca=trim(ca), tls_key=trim(key), tls_cert=trim(cert), &
               land_cover_fractions=frac)
  write(log, "(a,1x,i0,1x,a,1x,a)") "cover_sum", ierr, lc_error_field(bad), lc_error_rule(bad)
  print "(a,i0,a)", "fortran error case cover_sum -> ", ierr, ": "//lc_error_message(bad)
  call lc_close(bad, ierr)
  call lc_open(bad, trim(target), grid(1:nc, 1), grid(1:nc, 2), start, 3600_int64, onames, ierr, &
               token=trim(token), tls_root_ca=trim(ca), tls_key=trim(key), tls_cert=trim(cert), &
               backend="torchscript", height_wind=100.0d0)
  write(log, "(a,1x,i0,1x,a,1x,a)") "height_backend", ierr, lc_error_field(bad), lc_error_rule(bad)
  print "(a,i0,a)", "fortran error case height_backend -> ", ierr, ": "//lc_error_message(bad)
  call lc_close(bad, ierr)
  close(log)

  if (failures == 0) then
    print "(a)", "FORTRAN FEATURES OK"
  else
    print "(a,i0)", "FORTRAN FEATURES FAILED: ", failures
    stop 1
  end if
end program test_f_features
