/* A disk that fails on demand, and counts what is written, for the fault tests and the
 * benchmark (LD_PRELOAD into the real daemon).
 *
 * While the file named by $FAILING_DISK_CONTROL exists, every write and sync of a file under
 * $FAILING_DISK_DIR fails with the errno written in the control file (28 ENOSPC, 5 EIO), as a
 * full or failing disk makes them fail. Other files (logs, sockets) are not touched.
 * With $FAILING_DISK_COUNTER (a file of 8 bytes), the bytes written to files under the folder
 * are added up in it (a shared, memory-mapped counter the benchmark reads).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static int in_folder(int fd) {
    const char *dir = getenv("FAILING_DISK_DIR");
    if (!dir) return 0;
    char link[64], target[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    return strncmp(target, dir, strlen(dir)) == 0;
}

static volatile uint64_t *counter(void) {
    static volatile uint64_t *mapped = NULL;
    static int tried = 0;
    if (!tried) {
        tried = 1;
        const char *path = getenv("FAILING_DISK_COUNTER");
        if (path) {
            int fd = open(path, O_RDWR);
            if (fd >= 0) {
                void *m = mmap(NULL, 8, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (m != MAP_FAILED) mapped = m;
                close(fd);
            }
        }
    }
    return mapped;
}

static void count(int fd, ssize_t written) {
    if (written <= 0) return;
    int saved = errno;
    volatile uint64_t *c = counter();
    if (c && in_folder(fd)) __atomic_add_fetch(c, (uint64_t)written, __ATOMIC_RELAXED);
    errno = saved;
}

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
    if (!in_folder(fd)) { errno = saved; return 0; }
    errno = code;
    return 1;
}

#define REAL(name) static __typeof__(name) *real = NULL; \
    if (!real) real = (__typeof__(name) *)dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t size) {
    REAL(write);
    if (failing(fd)) return -1;
    ssize_t n = real(fd, buf, size);
    count(fd, n);
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t size, off_t offset) {
    REAL(pwrite);
    if (failing(fd)) return -1;
    ssize_t n = real(fd, buf, size, offset);
    count(fd, n);
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t size, off_t offset) {
    REAL(pwrite64);
    if (failing(fd)) return -1;
    ssize_t n = real(fd, buf, size, offset);
    count(fd, n);
    return n;
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
