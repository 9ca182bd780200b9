/* eio_shim.c — an LD_PRELOAD shim for the fault tests
 * (tests/integration/test_faults.py): while the file named by
 * POSTERN_FAULT_TRIGGER exists, writes and syncs on any file descriptor open
 * on a path ending in POSTERN_FAULT_SUFFIX (default "/data.mdb", the LMDB
 * data file) fail with EIO, as a failing disk would make them. Each refused
 * call appends a line ("pwrite fd=N") to POSTERN_FAULT_LOG when set, so a
 * test can tell that the fault really happened.
 *
 * POSTERN_FAULT_OPS chooses what fails: "write" (write, pwrite, pwrite64,
 * writev, pwritev, pwritev64: the data pages and the meta page), "sync"
 * (fdatasync, fsync, sync_file_range), "write,sync" (the default) or
 * "meta": writes on a descriptor opened with O_DSYNC only, which is how
 * LMDB writes its meta page (the commit point) after the data pages. LMDB
 * 0.9 without MDB_WRITEMAP writes with pwrite and lseek+writev and syncs
 * with fdatasync; msync is left alone (WRITEMAP only).
 *
 * Under AddressSanitizer the ASan runtime must come first in LD_PRELOAD;
 * its interceptors then call on into this shim, which calls libc.
 *
 * Built by the test with `cc -shared -fPIC -O1 -o eio_shim.so eio_shim.c
 * -ldl`; not part of the meson build. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum { OP_WRITE = 1, OP_SYNC = 2, OP_META = 4 };

static int shim_ops(void)
{
	const char *o = getenv("POSTERN_FAULT_OPS");
	int ops = 0;

	if (!o || !*o)
		return OP_WRITE | OP_SYNC;
	if (strstr(o, "write"))
		ops |= OP_WRITE;
	if (strstr(o, "sync"))
		ops |= OP_SYNC;
	if (strstr(o, "meta"))
		ops |= OP_META;
	return ops;
}

/* Raw syscalls only from here on: no recursion into the wrappers below. */
static void shim_note(const char *what, int fd)
{
	const char *logp = getenv("POSTERN_FAULT_LOG");
	char line[64];
	int n, lfd;

	if (!logp)
		return;
	n = snprintf(line, sizeof(line), "%s fd=%d\n", what, fd);
	lfd = (int)syscall(SYS_openat, AT_FDCWD, logp,
			   O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0)
		return;
	(void)syscall(SYS_write, lfd, line, (size_t)n);
	(void)syscall(SYS_close, lfd);
}

/* Whether this call on fd is to fail: the trigger file exists and fd is
 * open on the data file. */
static int shim_fail(const char *what, int fd, int op)
{
	const char *trig = getenv("POSTERN_FAULT_TRIGGER");
	const char *suffix = getenv("POSTERN_FAULT_SUFFIX");
	char link[64], target[4096];
	int ops = shim_ops();
	size_t sl;
	ssize_t n;

	if (!trig || fd < 0)
		return 0;
	if (op == OP_WRITE && !(ops & OP_WRITE) && (ops & OP_META)) {
		long fl = syscall(SYS_fcntl, fd, F_GETFL);

		if (fl < 0 || !(fl & O_DSYNC))
			return 0;
	} else if (!(ops & op)) {
		return 0;
	}
	if (syscall(SYS_faccessat, AT_FDCWD, trig, F_OK) != 0)
		return 0;
	if (!suffix || !*suffix)
		suffix = "/data.mdb";
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = (ssize_t)syscall(SYS_readlinkat, AT_FDCWD, link, target,
			     sizeof(target) - 1);
	if (n <= 0)
		return 0;
	target[n] = '\0';
	sl = strlen(suffix);
	if ((size_t)n < sl || strcmp(target + n - sl, suffix) != 0)
		return 0;
	shim_note(what, fd);
	errno = EIO;
	return 1;
}

#define REAL(ret, name, ...) \
	static ret (*real)(__VA_ARGS__); \
	if (!real) \
		real = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, name)

ssize_t write(int fd, const void *buf, size_t n)
{
	REAL(ssize_t, "write", int, const void *, size_t);
	if (shim_fail("write", fd, OP_WRITE))
		return -1;
	return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	REAL(ssize_t, "pwrite", int, const void *, size_t, off_t);
	if (shim_fail("pwrite", fd, OP_WRITE))
		return -1;
	return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	REAL(ssize_t, "pwrite64", int, const void *, size_t, off64_t);
	if (shim_fail("pwrite64", fd, OP_WRITE))
		return -1;
	return real(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
	REAL(ssize_t, "writev", int, const struct iovec *, int);
	if (shim_fail("writev", fd, OP_WRITE))
		return -1;
	return real(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off)
{
	REAL(ssize_t, "pwritev", int, const struct iovec *, int, off_t);
	if (shim_fail("pwritev", fd, OP_WRITE))
		return -1;
	return real(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off)
{
	REAL(ssize_t, "pwritev64", int, const struct iovec *, int, off64_t);
	if (shim_fail("pwritev64", fd, OP_WRITE))
		return -1;
	return real(fd, iov, cnt, off);
}

int fdatasync(int fd)
{
	REAL(int, "fdatasync", int);
	if (shim_fail("fdatasync", fd, OP_SYNC))
		return -1;
	return real(fd);
}

int fsync(int fd)
{
	REAL(int, "fsync", int);
	if (shim_fail("fsync", fd, OP_SYNC))
		return -1;
	return real(fd);
}

int sync_file_range(int fd, off_t off, off_t n, unsigned int flags)
{
	REAL(int, "sync_file_range", int, off_t, off_t, unsigned int);
	if (shim_fail("sync_file_range", fd, OP_SYNC))
		return -1;
	return real(fd, off, n, flags);
}
