!> Fortran MPI example (and test, driven by clients/test/run_tests.py): every rank couples its
!> own 4 cells through its own session (run id "fortran-mpi", its rank), 48 hourly steps of
!> station forcing read from DIR/forcing.bin, outputs written to DIR/f_out_rankR.bin. The
!> session also returns the energy-balance terms rsus, hfdsl, rns (DIR/f_energy_rankR.bin); each
!> rank prints its largest |rsds - rsus + rlds - rlus - hfls - hfss - hfdsl| (surface energy
!> balance, W m-2). Rank 0 also sends bad input (NaN, out-of-order index) and logs the refusals
!> to DIR/f_errors.txt.
!>   mpirun -np 4 fortran_mpi_example TARGET DIR
program example_mpi
  use mpi
  use iso_c_binding, only: c_double, c_float
  use iso_fortran_env, only: int64
  use landcoupler_mod
  implicit none
  integer, parameter :: nc = 4, ncall = 16, nv = 7, nt = 48, no = 4
  character(len=8), parameter :: fnames(nv) = [character(len=8) :: "tas", "huss", "ps", &
                                  "sfcWind", "pr", "rsds", "rlds"]
  character(len=8), parameter :: onames(no) = [character(len=8) :: "hfls", "hfss", "ts", "rlus"]
  ! the coupled outputs plus what closes the surface energy balance
  integer, parameter :: ne = 3
  character(len=8), parameter :: allnames(no + ne) = [character(len=8) :: onames, "rsus", &
                                   "hfdsl", "rns"]
  real(c_double) :: outall(nc, no + ne), resid, maxresid
  real(c_double) :: grid(ncall, 2), allforcing(ncall, nv, nt), forcing(nc, nv), outputs(nc, no)
  real(c_double) :: again(nc, no), short(nc - 1, nv), extra(nc, nv + 1)
  real(c_float) :: forcing32(nc, nv), outputs32(nc, no)
  character(len=8) :: xnames(nv + 1)
  character(len=4096) :: url
  type(landcoupler_session) :: s, bad, resumed
  character(len=4096) :: target, dir
  character(len=16) :: rankstr
  integer :: rank, nranks, ierr, mpierr, t, u, ue, lo, failures, total
  integer(int64) :: k

  call mpi_init(mpierr)
  call mpi_comm_rank(MPI_COMM_WORLD, rank, mpierr)
  call mpi_comm_size(MPI_COMM_WORLD, nranks, mpierr)
  call get_command_argument(1, target)
  call get_command_argument(2, dir)
  failures = 0

  open(newunit=u, file=trim(dir)//"/grid.bin", access="stream", form="unformatted", status="old")
  read(u) grid
  close(u)
  open(newunit=u, file=trim(dir)//"/forcing.bin", access="stream", form="unformatted", status="old")
  read(u) allforcing
  close(u)
  lo = mod(rank, ncall / nc) * nc + 1

  call lc_open(s, trim(target), grid(lo:lo+nc-1, 1), grid(lo:lo+nc-1, 2), "2001-01-01T05:00:00Z", &
               3600_int64, allnames, ierr, backend="reference", land_cover="grass", &
               run_id="fortran-mpi", rank=rank)
  if (ierr /= 0) then
    print *, "rank", rank, "open failed:", ierr, lc_error_message(s)
    call mpi_abort(MPI_COMM_WORLD, 1, mpierr)
  end if
  write(rankstr, "(i0)") rank
  open(newunit=u, file=trim(dir)//"/f_out_rank"//trim(rankstr)//".bin", access="stream", &
       form="unformatted", status="replace")
  open(newunit=ue, file=trim(dir)//"/f_energy_rank"//trim(rankstr)//".bin", access="stream", &
       form="unformatted", status="replace")
  maxresid = 0
  do t = 1, nt
    forcing = allforcing(lo:lo+nc-1, :, t)
    k = t - 1
    call lc_step(s, k, fnames, forcing, allnames, outall, ierr)
    if (ierr /= 0) then
      print *, "rank", rank, "step", k, "failed:", ierr, lc_error_message(s)
      failures = failures + 1
      exit
    end if
    outputs = outall(:, 1:no)
    write(u) outputs
    write(ue) outall(:, no+1:)
    ! Rn = rsds - rsus + rlds - rlus = LE + H + G (forcing 6 = rsds, 7 = rlds)
    resid = maxval(abs(forcing(:, 6) - outall(:, 5) + forcing(:, 7) - outall(:, 4) &
                       - outall(:, 1) - outall(:, 2) - outall(:, 6)))
    maxresid = max(maxresid, resid)
    ! blind resend of the same index: the stored reply, nothing advances
    call lc_step(s, k, fnames, forcing, onames, again, ierr)
    if (ierr /= 0 .or. any(again /= outputs)) then
      print *, "rank", rank, "resend of step", k, "differs:", ierr
      failures = failures + 1
    end if
    if (t == 24) then
      call lc_checkpoint(s, ierr, url="file://"//trim(dir)//"/ckpt/fortran-rank"//trim(rankstr)//".ckpt", &
                         written=url)
      if (ierr /= 0) then
        print *, "rank", rank, "checkpoint failed:", lc_error_message(s)
        failures = failures + 1
      end if
    end if
  end do
  close(u)
  close(ue)
  print "(a,i0,a,es9.2,a)", "rank ", rank, ": energy closes every step, max |Rn - LE - H - G| = ", &
        maxresid, " W m-2"
  call lc_close(s, ierr)
  if (ierr /= 0) failures = failures + 1

  ! resume from the checkpoint taken after step 23 and redo steps 24..47
  call lc_resume(resumed, trim(target), trim(url), ierr)
  if (ierr /= 0 .or. lc_next_index(resumed) /= 24) then
    print *, "rank", rank, "resume failed:", ierr, lc_error_message(resumed)
    failures = failures + 1
  else
    open(newunit=u, file=trim(dir)//"/f_resume_rank"//trim(rankstr)//".bin", access="stream", &
         form="unformatted", status="replace")
    do t = 25, nt
      forcing = allforcing(lo:lo+nc-1, :, t)
      call lc_step(resumed, int(t - 1, int64), fnames, forcing, onames, outputs, ierr)
      if (ierr /= 0) failures = failures + 1
      write(u) outputs
    end do
    close(u)
    call lc_close(resumed, ierr)
  end if

  ! float32 forcing and outputs (generic lc_step)
  call lc_open(s, trim(target), grid(lo:lo+nc-1, 1), grid(lo:lo+nc-1, 2), "2001-01-01T05:00:00Z", &
               3600_int64, onames, ierr, run_id="fortran-f32", rank=rank)
  open(newunit=u, file=trim(dir)//"/f_f32_rank"//trim(rankstr)//".bin", access="stream", &
       form="unformatted", status="replace")
  do t = 1, nt
    forcing32 = real(allforcing(lo:lo+nc-1, :, t), c_float)
    call lc_step(s, int(t - 1, int64), fnames, forcing32, onames, outputs32, ierr)
    if (ierr /= 0) failures = failures + 1
    write(u) outputs32
  end do
  close(u)
  call lc_close(s, ierr)

  if (rank == 0) then
    open(newunit=u, file=trim(dir)//"/f_errors.txt", status="replace")
    call lc_open(bad, trim(target), grid(1:nc, 1), grid(1:nc, 2), "2001-01-01T05:00:00Z", &
                 3600_int64, onames, ierr, run_id="fortran-errors")
    forcing = allforcing(1:nc, :, 1)
    forcing(1, 1) = ieee_nan()
    call lc_step(bad, 0_int64, fnames, forcing, onames, outputs, ierr)
    write(u, "(a,1x,i0,1x,a,1x,a)") "nan", ierr, lc_error_field(bad), lc_error_rule(bad)
    print "(a,i0,a)", "fortran error case nan -> ", ierr, ": "//lc_error_message(bad)
    forcing = allforcing(1:nc, :, 1)
    call lc_step(bad, 5_int64, fnames, forcing, onames, outputs, ierr)
    write(u, "(a,1x,i0,1x,a,1x,a)") "order", ierr, lc_error_field(bad), lc_error_rule(bad)
    print "(a,i0,a)", "fortran error case order -> ", ierr, ": "//lc_error_message(bad)
    xnames(1:nv) = fnames
    xnames(nv + 1) = "foo"
    extra(:, 1:nv) = allforcing(1:nc, :, 1)
    extra(:, nv + 1) = allforcing(1:nc, 1, 1)
    call lc_step(bad, 0_int64, xnames, extra, onames, outputs, ierr)
    write(u, "(a,1x,i0,1x,a,1x,a)") "unknown", ierr, lc_error_field(bad), lc_error_rule(bad)
    print "(a,i0,a)", "fortran error case unknown -> ", ierr, ": "//lc_error_message(bad)
    short = allforcing(1:nc-1, :, 1)
    call lc_step(bad, 0_int64, fnames, short, onames, outputs, ierr)
    write(u, "(a,1x,i0,1x,a,1x,a)") "size", ierr, lc_error_field(bad), lc_error_rule(bad)
    print "(a,i0,a)", "fortran error case size -> ", ierr, ": "//lc_error_message(bad)
    ! the refusals left the session unchanged: step 0 goes through
    forcing = allforcing(1:nc, :, 1)
    call lc_step(bad, 0_int64, fnames, forcing, onames, outputs, ierr)
    if (ierr /= 0) failures = failures + 1
    call lc_close(bad, ierr)
    close(u)
  end if

  call mpi_reduce(failures, total, 1, MPI_INTEGER, MPI_SUM, 0, MPI_COMM_WORLD, mpierr)
  if (rank == 0) then
    if (total == 0) then
      print "(a,i0,a)", "FORTRAN MPI OK (", nranks, " ranks, 48 steps each)"
    else
      print "(a,i0)", "FORTRAN MPI FAILED: ", total
    end if
  end if
  call mpi_finalize(mpierr)
  if (total /= 0 .and. rank == 0) stop 1

contains

  function ieee_nan() result(x)
    use, intrinsic :: ieee_arithmetic, only: ieee_value, ieee_quiet_nan
    real(c_double) :: x
    x = ieee_value(x, ieee_quiet_nan)
  end function

end program example_mpi
