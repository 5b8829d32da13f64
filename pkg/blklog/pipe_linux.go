package blklog

import (
	"os"
	"syscall"
)

// fSetPipeSize is F_SETPIPE_SZ (fcntl.h), which the syscall package does not name.
const fSetPipeSize = 1031

// pipeBuffer is the pipe buffer a log read from a pipe asks for: the most an unprivileged process
// may (/proc/sys/fs/pipe-max-size). With the default 64 KiB, `zstd -dc` of the bench's 1.2 GB
// large log into a reader that only discards took 1.0-1.8 s, with 1 MiB 0.68-0.72 s: the writer
// and the reader wait for each other sixteen times less often.
const pipeBuffer = 1 << 20

// widenPipe asks for a larger buffer on f when it is a pipe (a log on standard input). What the
// kernel refuses changes nothing but the speed.
func widenPipe(f *os.File) {
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		return
	}
	if rc, err := f.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_, _, _ = syscall.Syscall(syscall.SYS_FCNTL, fd, fSetPipeSize, pipeBuffer)
		})
	}
}
