/* A disk that fails on demand, for the fault tests (LD_PRELOAD into the real daemon).
 *
 * While the file named by $FAILING_DISK_CONTROL exists, every write and sync of a file under
 * $FAILING_DISK_DIR fails with the errno written in the control file (28 ENOSPC, 5 EIO), as a
 * full or failing disk makes them fail. Other files (logs, sockets) are not touched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int failing(int fd) {
    const char *dir = getenv("FAILING_DISK_DIR");
    const char *control = getenv("FAILING_DISK_CONTROL");
    if (!dir || !control) return 0;
    int saved = errno;
    FILE *f = fopen(control, "r");
    if (!f) { errno = saved; return 0; }
    int code = EIO;
    if (fscanf(f, "%d", &code) != 1) code = EIO;
    fclose(f);
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) { errno = saved; return 0; }
    target[n] = 0;
    if (strncmp(target, dir, strlen(dir)) != 0) { errno = saved; return 0; }
    errno = code;
    return 1;
}

#define REAL(name) static __typeof__(name) *real = NULL; \
    if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write);
    if (failing(fd)) return -1;
    return real(fd, buf, count);
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite);
    if (failing(fd)) return -1;
    return real(fd, buf, count, offset);
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t offset) {
    REAL(pwrite64);
    if (failing(fd)) return -1;
    return real(fd, buf, count, offset);
}

int fsync(int fd) {
    REAL(fsync);
    if (failing(fd)) return -1;
    return real(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    if (failing(fd)) return -1;
    return real(fd);
}
