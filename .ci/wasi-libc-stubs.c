/*
 * What Rust's std for wasm32-wasip1 links against and Debian 12's wasi-libc (2022-05) lacks.
 *
 * Newer wasi-libc releases carry these for the single-threaded target; these behave the same:
 * no thread can ever be created (pthread_create fails with EAGAIN, so std::thread::spawn returns
 * an error instead of failing to link), the attribute calls succeed on a plain value, and realpath
 * resolves a path with what WASI preview 1 offers (the emulated cwd, lstat, readlink).
 *
 * Debian's wasi-libc has no <pthread.h>: the types come from musl's <sys/types.h>, and the
 * prototypes are written here.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* Debian's <limits.h> defines it only for threaded builds; musl's value. */
#ifndef PTHREAD_STACK_MIN
#define PTHREAD_STACK_MIN 2048
#endif

int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg);
int pthread_detach(pthread_t thread);
int pthread_join(pthread_t thread, void **result);
int pthread_attr_init(pthread_attr_t *attr);
int pthread_attr_destroy(pthread_attr_t *attr);
int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size);
int pthread_attr_getstacksize(const pthread_attr_t *attr, size_t *size);

/* Without the threads proposal there is nothing to run a second thread on: the resource
 * "threads" is exhausted, which POSIX spells EAGAIN. */
int pthread_create(pthread_t *thread, const pthread_attr_t *attr, void *(*start)(void *), void *arg)
{
    (void)thread;
    (void)attr;
    (void)start;
    (void)arg;
    return EAGAIN;
}

/* No thread was ever created, so there is none to wait for. */
int pthread_join(pthread_t thread, void **result)
{
    (void)thread;
    (void)result;
    return ESRCH;
}

/* Only the main thread exists; detaching it is allowed and changes nothing. */
int pthread_detach(pthread_t thread)
{
    (void)thread;
    return 0;
}

/* musl keeps the requested stack size in the first word of the attribute; 0 means "default". */
int pthread_attr_init(pthread_attr_t *attr)
{
    memset(attr, 0, sizeof *attr);
    return 0;
}

int pthread_attr_destroy(pthread_attr_t *attr)
{
    (void)attr;
    return 0;
}

int pthread_attr_setstacksize(pthread_attr_t *attr, size_t size)
{
    if (size < PTHREAD_STACK_MIN || size - PTHREAD_STACK_MIN > SIZE_MAX / 4)
        return EINVAL;
    attr->__u.__s[0] = size;
    return 0;
}

int pthread_attr_getstacksize(const pthread_attr_t *attr, size_t *size)
{
    *size = attr->__u.__s[0];
    return 0;
}

/* How many symbolic links one resolution may follow before it is called a loop. */
#define SYMLINK_BUDGET 40

/* Drops the last component of the absolute path in out (length *len), never above "/". */
static void drop_last_component(char *out, size_t *len)
{
    while (*len > 1 && out[*len - 1] != '/')
        (*len)--;
    if (*len > 1)
        (*len)--;
    out[*len] = '\0';
}

/* Appends "/name" (or "name" after the root) to out; ENAMETOOLONG if it does not fit. */
static int append_component(char *out, size_t *len, const char *name, size_t name_len)
{
    size_t sep = (*len > 1) ? 1 : 0;
    if (*len + sep + name_len >= PATH_MAX)
        return ENAMETOOLONG;
    if (sep)
        out[(*len)++] = '/';
    memcpy(out + *len, name, name_len);
    *len += name_len;
    out[*len] = '\0';
    return 0;
}

/*
 * Resolves `path` component by component into an absolute path without ".", ".." or symbolic
 * links. `pending` holds what is left to walk; a symbolic link's target is put in front of it.
 */
static int resolve(const char *path, char *out)
{
    char pending[PATH_MAX];
    char target[PATH_MAX];
    size_t len, pos = 0;
    int links = 0;

    if (path == NULL)
        return EINVAL;
    if (path[0] == '\0')
        return ENOENT;
    if (strlen(path) >= PATH_MAX)
        return ENAMETOOLONG;
    strcpy(pending, path);

    if (pending[0] == '/') {
        strcpy(out, "/");
    } else if (getcwd(out, PATH_MAX) == NULL) {
        return errno;
    }
    len = strlen(out);

    while (pending[pos] != '\0') {
        size_t start, name_len;
        struct stat st;
        int err;

        while (pending[pos] == '/')
            pos++;
        start = pos;
        while (pending[pos] != '\0' && pending[pos] != '/')
            pos++;
        name_len = pos - start;
        if (name_len == 0 || (name_len == 1 && pending[start] == '.'))
            continue;
        if (name_len == 2 && pending[start] == '.' && pending[start + 1] == '.') {
            drop_last_component(out, &len);
            continue;
        }
        err = append_component(out, &len, pending + start, name_len);
        if (err)
            return err;
        if (lstat(out, &st) != 0)
            return errno;
        if (S_ISLNK(st.st_mode)) {
            ssize_t n;
            size_t rest = strlen(pending + pos);
            if (++links > SYMLINK_BUDGET)
                return ELOOP;
            n = readlink(out, target, sizeof target - 1);
            if (n < 0)
                return errno;
            if ((size_t)n + rest >= PATH_MAX)
                return ENAMETOOLONG;
            memmove(pending + n, pending + pos, rest + 1);
            memcpy(pending, target, (size_t)n);
            pos = 0;
            drop_last_component(out, &len);
            if (n > 0 && target[0] == '/') {
                strcpy(out, "/");
                len = 1;
            }
        } else if (pending[pos] == '/' && !S_ISDIR(st.st_mode)) {
            return ENOTDIR;
        }
    }
    return 0;
}

char *realpath(const char *restrict path, char *restrict resolved)
{
    char out[PATH_MAX];
    int err = resolve(path, out);
    if (err) {
        errno = err;
        return NULL;
    }
    if (resolved == NULL)
        return strdup(out);
    strcpy(resolved, out);
    return resolved;
}
