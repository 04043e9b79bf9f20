/* The three host calls a socket program makes most often, in C.
 *
 * An async server under `wasiport run` spends nearly all of its time in three
 * calls: sock_recv, sock_send and poll_oneoff (a tokio echo round trip is one
 * of each). Made in Python, each costs several microseconds of interpreter
 * time on top of the system call; made here they cost about what the system
 * call does. hotpath.py compiles this file once per machine and falls back to
 * the Python host when no C compiler is found.
 *
 * Python stays the reference. Each function here answers only the plain case
 * and hands every other call, unchanged, to the Python implementation it
 * stands in front of (`binding->fallback`): unusual flags or pointers,
 * descriptors Python owns alone (wasmtime's, datagram sockets, sockets with
 * read-ahead bytes), wasmtime's clocks, interrupted system calls, the
 * watchdog's wake-up. A call is handed over before anything is done that
 * Python would do again, so the guest cannot tell which side answered: the
 * same checks in the same order, the same errno, the same events in the same
 * order. tests/runtime/test_hotpath.py runs the host's tests both ways.
 *
 * Every ABI number (errno table, poll masks, event types, socket descriptor
 * base) is handed over by Python from wasiport.runtime.abi at start-up; the
 * only layout written here is the 16-byte wasmtime argument slot and the
 * 48-byte subscription and 32-byte event of WASI preview 1.
 */
#define _GNU_SOURCE /* ppoll */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>

#define MAX_SUBSCRIPTIONS 64 /* larger polls go to Python */
#define SUBSCRIPTION_SIZE 48
#define EVENT_SIZE 32
#define SLOT_SIZE 16 /* wasmtime_val_raw_t */
#define MAX_IOVECS 64
#define TABLE_LIMIT (1u << 20)

typedef void *(*memory_data_fn)(const void *context, const void *memory);
typedef size_t (*memory_size_fn)(const void *context, const void *memory);
typedef void *(*callback_fn)(void *env, void *caller, void *args, size_t nargs);

struct guest_socket {
    int32_t host_fd; /* -1: not a socket this file may touch */
    uint8_t stream_without_read_ahead;
};

/* Owned by Python (hotpath.Counters), which counts the calls it answers in the same fields. */
struct counters {
    uint64_t activity; /* socket calls that move data or change a connection */
    uint64_t polls;    /* poll_oneoff calls answered, here or in Python */
    uint64_t answered; /* calls answered here */
};

struct hotpath {
    struct counters *counters;

    uint8_t *base;
    size_t size;
    const void *context;
    const void *memory;
    memory_data_fn memory_data;
    memory_size_fn memory_size;

    uint32_t fd_base;
    uint32_t capacity;
    struct guest_socket *table;
    int wakeup_fd;

    uint16_t errnos[512]; /* host errno -> WASI errno */
    uint16_t errno_unknown;
    int16_t read_mask, write_mask, trouble;
    uint16_t hangup_flag;
    uint8_t tag_clock, tag_read, tag_write;
    uint32_t clock_realtime, clock_monotonic;
    int64_t spin_pause_ns;
    int msg_nosignal;

    /* The last answer, when it was "writable" only: see pause_if_spinning. */
    int last_valid;
    uint32_t last_count;
    uint64_t last_activity, last_polls;
    uint32_t last_nanswered;
    uint64_t last_answered[MAX_SUBSCRIPTIONS];
    uint8_t last_subscriptions[MAX_SUBSCRIPTIONS * SUBSCRIPTION_SIZE];
};

struct binding {
    struct hotpath *state;
    callback_fn fallback;
};

/* -- set-up, called from Python ------------------------------------------ */

struct hotpath *hotpath_new(void) {
    struct hotpath *state = calloc(1, sizeof *state);
    if (state != NULL) {
        state->wakeup_fd = -1;
    }
    return state;
}

void hotpath_free(struct hotpath *state) {
    if (state != NULL) {
        free(state->table);
        free(state);
    }
}

struct binding *hotpath_bind(struct hotpath *state, callback_fn fallback) {
    struct binding *binding = malloc(sizeof *binding);
    if (binding != NULL) {
        binding->state = state;
        binding->fallback = fallback;
    }
    return binding;
}

void hotpath_unbind(struct binding *binding) { free(binding); }

void hotpath_configure(struct hotpath *state, struct counters *counters, uint32_t fd_base, int wakeup_fd, const uint16_t *errnos, int nerrnos,
                       uint16_t errno_unknown, int read_mask, int write_mask, int trouble,
                       int hangup_flag, int tag_clock, int tag_read, int tag_write, uint32_t clock_realtime,
                       uint32_t clock_monotonic, int64_t spin_pause_ns, int msg_nosignal) {
    int limit = (int)(sizeof state->errnos / sizeof state->errnos[0]);
    for (int i = 0; i < nerrnos && i < limit; i++) {
        state->errnos[i] = errnos[i];
    }
    state->counters = counters;
    state->fd_base = fd_base;
    state->wakeup_fd = wakeup_fd;
    state->errno_unknown = errno_unknown;
    state->read_mask = (int16_t)read_mask;
    state->write_mask = (int16_t)write_mask;
    state->trouble = (int16_t)trouble;
    state->hangup_flag = (uint16_t)hangup_flag;
    state->tag_clock = (uint8_t)tag_clock;
    state->tag_read = (uint8_t)tag_read;
    state->tag_write = (uint8_t)tag_write;
    state->clock_realtime = clock_realtime;
    state->clock_monotonic = clock_monotonic;
    state->spin_pause_ns = spin_pause_ns;
    state->msg_nosignal = msg_nosignal;
}

void hotpath_attach_memory(struct hotpath *state, const void *context, const void *memory, memory_data_fn data,
                           memory_size_fn size) {
    state->context = context;
    state->memory = memory;
    state->memory_data = data;
    state->memory_size = size;
    state->base = data(context, memory);
    state->size = size(context, memory);
}

void hotpath_detach_memory(struct hotpath *state) {
    state->base = NULL;
    state->size = 0;
}

/* Returns 0, or -1 when the table cannot hold `fd` (the socket then stays Python's alone). */
int hotpath_set_socket(struct hotpath *state, uint32_t fd, int32_t host_fd, int stream_without_read_ahead) {
    if (fd < state->fd_base || fd - state->fd_base >= TABLE_LIMIT) {
        return -1;
    }
    uint32_t index = fd - state->fd_base;
    if (index >= state->capacity) {
        uint32_t capacity = state->capacity ? state->capacity : 64;
        while (capacity <= index) {
            capacity *= 2;
        }
        struct guest_socket *table = realloc(state->table, capacity * sizeof *table);
        if (table == NULL) {
            return -1;
        }
        for (uint32_t i = state->capacity; i < capacity; i++) {
            table[i].host_fd = -1;
            table[i].stream_without_read_ahead = 0;
        }
        state->table = table;
        state->capacity = capacity;
    }
    state->table[index].host_fd = host_fd;
    state->table[index].stream_without_read_ahead = (uint8_t)(stream_without_read_ahead != 0);
    return 0;
}

void hotpath_forget_socket(struct hotpath *state, uint32_t fd) {
    if (fd >= state->fd_base && fd - state->fd_base < state->capacity) {
        state->table[fd - state->fd_base].host_fd = -1;
    }
}

/* -- helpers --------------------------------------------------------------- */

static inline uint32_t arg(const void *args, int index) {
    uint32_t value;
    memcpy(&value, (const uint8_t *)args + SLOT_SIZE * index, sizeof value);
    return value;
}

static inline void *answer(struct hotpath *state, void *args, uint32_t wasi_errno) {
    memcpy(args, &wasi_errno, sizeof wasi_errno);
    state->counters->answered++;
    return NULL;
}

static inline uint32_t wasi_errno(const struct hotpath *state, int code) {
    if (code > 0 && code < (int)(sizeof state->errnos / sizeof state->errnos[0]) && state->errnos[code]) {
        return state->errnos[code];
    }
    return state->errno_unknown;
}

/* True when guest bytes [0, end) exist, re-reading the size once (memory only grows). */
static inline int covers(struct hotpath *state, uint64_t end) {
    if (end <= state->size) {
        return 1;
    }
    state->size = state->memory_size(state->context, state->memory);
    return end <= state->size;
}

static inline uint32_t load32(const struct hotpath *state, uint32_t offset) {
    uint32_t value;
    memcpy(&value, state->base + offset, sizeof value);
    return value;
}

static inline void store32(struct hotpath *state, uint32_t offset, uint32_t value) {
    memcpy(state->base + offset, &value, sizeof value);
}

static inline const struct guest_socket *lookup(const struct hotpath *state, uint32_t fd) {
    if (fd < state->fd_base || fd - state->fd_base >= state->capacity) {
        return NULL;
    }
    const struct guest_socket *sock = &state->table[fd - state->fd_base];
    return sock->host_fd >= 0 ? sock : NULL;
}

/* -- sock_recv(fd, iovs, iovs_len, riflags, len_ptr, oflags_ptr) ------------ */

void *hotpath_sock_recv(void *env, void *caller, void *args, size_t nargs) {
    struct binding *binding = env;
    struct hotpath *state = binding->state;
    uint32_t fd = arg(args, 0), iovs = arg(args, 1), iovs_len = arg(args, 2);
    uint32_t riflags = arg(args, 3), len_ptr = arg(args, 4), oflags_ptr = arg(args, 5);
    const struct guest_socket *sock = lookup(state, fd);
    /* The plain case only: one iovec, no flags, aligned and in bounds, a stream socket with
       nothing read ahead by Python. Small reads too: one recv here costs less than Python
       serving them from its read-ahead buffer (a byte-at-a-time parser makes many). */
    if (state->base == NULL || sock == NULL || !sock->stream_without_read_ahead || riflags != 0 || iovs_len != 1
        || ((iovs | len_ptr) & 3) || (oflags_ptr & 1)
        || !covers(state, (uint64_t)iovs + 8) || !covers(state, (uint64_t)len_ptr + 4)
        || !covers(state, (uint64_t)oflags_ptr + 2)) {
        return binding->fallback(env, caller, args, nargs);
    }
    uint32_t buf = load32(state, iovs), length = load32(state, iovs + 4);
    if (!covers(state, (uint64_t)buf + length)) {
        return binding->fallback(env, caller, args, nargs);
    }
    ssize_t received = recv(sock->host_fd, state->base + buf, length, 0);
    if (received < 0 && errno == EINTR) {
        return binding->fallback(env, caller, args, nargs); /* Python checks signals, then retries */
    }
    state->counters->activity++;
    if (received < 0) {
        return answer(state, args, wasi_errno(state, errno));
    }
    store32(state, len_ptr, (uint32_t)received);
    memset(state->base + oflags_ptr, 0, 2);
    return answer(state, args, 0);
}

/* -- sock_send(fd, iovs, iovs_len, siflags, len_ptr) ------------------------- */

void *hotpath_sock_send(void *env, void *caller, void *args, size_t nargs) {
    struct binding *binding = env;
    struct hotpath *state = binding->state;
    uint32_t fd = arg(args, 0), iovs = arg(args, 1), iovs_len = arg(args, 2);
    uint32_t siflags = arg(args, 3), len_ptr = arg(args, 4);
    const struct guest_socket *sock = lookup(state, fd);
    if (state->base == NULL || sock == NULL || siflags != 0 || iovs_len == 0 || iovs_len > MAX_IOVECS
        || ((iovs | len_ptr) & 3) || !covers(state, (uint64_t)iovs + 8ull * iovs_len)
        || !covers(state, (uint64_t)len_ptr + 4)) {
        return binding->fallback(env, caller, args, nargs);
    }
    struct iovec vectors[MAX_IOVECS];
    for (uint32_t i = 0; i < iovs_len; i++) {
        uint32_t buf = load32(state, iovs + 8 * i), length = load32(state, iovs + 8 * i + 4);
        if (!covers(state, (uint64_t)buf + length)) {
            return binding->fallback(env, caller, args, nargs);
        }
        vectors[i].iov_base = state->base + buf;
        vectors[i].iov_len = length;
    }
    ssize_t sent;
    if (iovs_len == 1) {
        sent = send(sock->host_fd, vectors[0].iov_base, vectors[0].iov_len, state->msg_nosignal);
    } else {
        struct msghdr message = {0};
        message.msg_iov = vectors;
        message.msg_iovlen = iovs_len;
        sent = sendmsg(sock->host_fd, &message, state->msg_nosignal);
    }
    if (sent < 0 && errno == EINTR) {
        return binding->fallback(env, caller, args, nargs);
    }
    state->counters->activity++;
    if (sent < 0) {
        return answer(state, args, wasi_errno(state, errno));
    }
    store32(state, len_ptr, (uint32_t)sent);
    return answer(state, args, 0);
}

/* -- poll_oneoff(in, out, nsubscriptions, nevents_ptr) ----------------------- */

struct subscription {
    uint64_t userdata;
    uint8_t tag;
    int slot; /* index in the pollfd array; -1 for a clock */
    int64_t deadline;
};

static int64_t monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* ppoll with a relative timeout in nanoseconds; < 0 waits without limit. */
static int wait_ns(struct pollfd *fds, int nfds, int64_t timeout) {
    if (timeout < 0) {
        return ppoll(fds, (nfds_t)nfds, NULL, NULL);
    }
    struct timespec span = {(time_t)(timeout / 1000000000), (long)(timeout % 1000000000)};
    return ppoll(fds, (nfds_t)nfds, &span, NULL);
}

static uint64_t readable_bytes(int fd) {
    int queued = 0;
    if (ioctl(fd, FIONREAD, &queued) != 0) {
        return 1;
    }
    return queued > 0 ? (uint64_t)queued : 0;
}

static uint64_t writable_bytes(int fd) {
    int size = 0, queued = 0;
    socklen_t length = sizeof size;
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, &length) != 0 || ioctl(fd, TIOCOUTQ, &queued) != 0) {
        return 1;
    }
    return size > queued ? (uint64_t)(size - queued) : 0;
}

static void put_event(uint8_t *at, uint64_t userdata, uint8_t tag, uint64_t nbytes, uint16_t flags) {
    memset(at, 0, EVENT_SIZE);
    memcpy(at, &userdata, 8);
    at[10] = tag;
    memcpy(at + 16, &nbytes, 8);
    memcpy(at + 24, &flags, 2);
}

static int answered_before(const struct hotpath *state, uint64_t userdata) {
    for (uint32_t i = 0; i < state->last_nanswered; i++) {
        if (state->last_answered[i] == userdata) {
            return 1;
        }
    }
    return 0;
}

/* fdops.DescriptorOps._pause_if_spinning, for this side: when the guest asks the same
   question again having done nothing with a "writable only" answer, wait up to the spin
   pause for anything else (a read, another socket writable, trouble, a clock, the
   watchdog) before the poll proper. Returns -1 when interrupted by a signal. */
static int pause_if_spinning(struct hotpath *state, const uint8_t *raw, uint32_t count,
                             const struct subscription *subs, const struct pollfd *fds, int nfds,
                             int writers_told_apart, int64_t earliest) {
    if (!state->last_valid || !writers_told_apart || state->last_count != count
        || state->last_activity != state->counters->activity || state->last_polls != state->counters->polls
        || memcmp(state->last_subscriptions, raw, (size_t)count * SUBSCRIPTION_SIZE) != 0) {
        return 0;
    }
    struct pollfd pause[MAX_SUBSCRIPTIONS + 1];
    for (int i = 0; i < nfds; i++) {
        pause[i].fd = fds[i].fd;
        pause[i].events = 0; /* POLLHUP and POLLERR are reported even so */
        pause[i].revents = 0;
    }
    for (uint32_t i = 0; i < count; i++) {
        if (subs[i].slot < 0) {
            continue;
        }
        if (subs[i].tag == state->tag_read) {
            pause[subs[i].slot].events |= state->read_mask;
        } else if (!answered_before(state, subs[i].userdata)) {
            pause[subs[i].slot].events |= state->write_mask;
        }
    }
    pause[nfds - 1].events = POLLIN; /* the watchdog's wake-up */
    int64_t timeout = state->spin_pause_ns;
    if (earliest >= 0) {
        int64_t left = earliest - monotonic_ns();
        timeout = left < 0 ? 0 : (left < timeout ? left : timeout);
    }
    if (wait_ns(pause, nfds, timeout) < 0 && errno == EINTR) {
        return -1;
    }
    return 0;
}

static void remember_answer(struct hotpath *state, const uint8_t *raw, uint32_t count, const uint8_t *events,
                            uint32_t nevents) {
    state->last_valid = 0;
    for (uint32_t i = 0; i < nevents; i++) {
        const uint8_t *event = events + (size_t)i * EVENT_SIZE;
        uint16_t error, flags;
        memcpy(&error, event + 8, 2);
        memcpy(&flags, event + 24, 2);
        if (event[10] != state->tag_write || error || flags) {
            return;
        }
        memcpy(&state->last_answered[i], event, 8);
    }
    state->last_nanswered = nevents;
    state->last_count = count;
    memcpy(state->last_subscriptions, raw, (size_t)count * SUBSCRIPTION_SIZE);
    state->last_activity = state->counters->activity;
    state->last_polls = state->counters->polls;
    state->last_valid = 1;
}

void *hotpath_poll_oneoff(void *env, void *caller, void *args, size_t nargs) {
    struct binding *binding = env;
    struct hotpath *state = binding->state;
    uint32_t in = arg(args, 0), out = arg(args, 1), count = arg(args, 2), nevents_ptr = arg(args, 3);
    if (state->base == NULL || count == 0 || count > MAX_SUBSCRIPTIONS || (in & 7) || (out & 7) || (nevents_ptr & 3)
        || !covers(state, (uint64_t)in + (uint64_t)SUBSCRIPTION_SIZE * count)
        || !covers(state, (uint64_t)out + (uint64_t)EVENT_SIZE * count) || !covers(state, (uint64_t)nevents_ptr + 4)) {
        return binding->fallback(env, caller, args, nargs);
    }
    /* Copy the subscriptions first: the events may be written over them. */
    uint8_t raw[MAX_SUBSCRIPTIONS * SUBSCRIPTION_SIZE];
    memcpy(raw, state->base + in, (size_t)count * SUBSCRIPTION_SIZE);
    struct subscription subs[MAX_SUBSCRIPTIONS];
    struct pollfd fds[MAX_SUBSCRIPTIONS + 1];
    uint32_t guest_fd_of_slot[MAX_SUBSCRIPTIONS];
    int nfds = 0, sockets = 0, clocks = 0, writers_told_apart = 1;
    int64_t earliest = -1, now = monotonic_ns();
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *sub = raw + (size_t)i * SUBSCRIPTION_SIZE;
        uint32_t fd;
        uint64_t timeout;
        uint16_t flags;
        memcpy(&subs[i].userdata, sub, 8);
        subs[i].tag = sub[8];
        memcpy(&fd, sub + 16, 4);
        if (subs[i].tag == state->tag_clock) {
            memcpy(&timeout, sub + 24, 8);
            memcpy(&flags, sub + 40, 2);
            /* Relative clocks only; absolute ones need wasmtime's clock epoch (Python). */
            if (flags != 0 || (fd != state->clock_realtime && fd != state->clock_monotonic) || timeout > INT64_MAX / 2) {
                return binding->fallback(env, caller, args, nargs);
            }
            subs[i].slot = -1;
            subs[i].deadline = now + (int64_t)timeout;
            earliest = (earliest < 0 || subs[i].deadline < earliest) ? subs[i].deadline : earliest;
            clocks++;
            continue;
        }
        const struct guest_socket *sock = lookup(state, fd);
        if ((subs[i].tag != state->tag_read && subs[i].tag != state->tag_write) || sock == NULL
            || (subs[i].tag == state->tag_read && !sock->stream_without_read_ahead)) {
            return binding->fallback(env, caller, args, nargs);
        }
        int slot = -1;
        for (int s = 0; s < nfds; s++) {
            if (guest_fd_of_slot[s] == fd) {
                slot = s;
                break;
            }
        }
        if (slot < 0) {
            slot = nfds++;
            guest_fd_of_slot[slot] = fd;
            fds[slot].fd = sock->host_fd;
            fds[slot].events = 0;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (subs[j].slot == slot && subs[j].tag == subs[i].tag) {
                return binding->fallback(env, caller, args, nargs); /* a duplicate: Python answers EXIST */
            }
            if (subs[i].tag == state->tag_write && subs[j].tag == state->tag_write && subs[j].userdata == subs[i].userdata) {
                writers_told_apart = 0;
            }
        }
        subs[i].slot = slot;
        fds[slot].events |= subs[i].tag == state->tag_read ? state->read_mask : state->write_mask;
        sockets++;
    }
    if (sockets == 0) {
        return binding->fallback(env, caller, args, nargs); /* sleeps stay interruptible in Python */
    }
    fds[nfds].fd = state->wakeup_fd;
    fds[nfds].events = POLLIN;
    int total = nfds + 1;
    if (pause_if_spinning(state, raw, count, subs, fds, total, writers_told_apart, earliest) < 0) {
        return binding->fallback(env, caller, args, nargs);
    }
    /* Collected here and copied at the end: a call handed to Python midway must find the
       guest's memory as it was (the event array may overlap the subscriptions). */
    uint8_t events[MAX_SUBSCRIPTIONS * EVENT_SIZE];
    uint32_t nevents = 0;
    for (;;) {
        int64_t timeout = earliest < 0 ? -1 : earliest - monotonic_ns();
        if (earliest >= 0 && timeout < 0) {
            timeout = 0;
        }
        for (int s = 0; s < total; s++) {
            fds[s].revents = 0;
        }
        if (wait_ns(fds, total, timeout) < 0) {
            return binding->fallback(env, caller, args, nargs); /* EINTR: Python checks signals */
        }
        if (fds[nfds].revents) {
            return binding->fallback(env, caller, args, nargs); /* the watchdog fired: Python traps */
        }
        for (int s = 0; s < nfds; s++) {
            short revents = fds[s].revents;
            if (!revents) {
                continue;
            }
            if (revents & POLLNVAL) {
                return binding->fallback(env, caller, args, nargs);
            }
            uint16_t hangup = (revents & POLLHUP) ? state->hangup_flag : 0;
            for (uint32_t i = 0; i < count; i++) {
                if (subs[i].slot != s) {
                    continue;
                }
                if (subs[i].tag == state->tag_read) {
                    if (revents & (state->read_mask | state->trouble)) {
                        put_event(events + (size_t)nevents++ * EVENT_SIZE, subs[i].userdata, subs[i].tag,
                                  readable_bytes(fds[s].fd), hangup);
                    }
                } else if (revents & (state->write_mask | state->trouble)) {
                    put_event(events + (size_t)nevents++ * EVENT_SIZE, subs[i].userdata, subs[i].tag,
                              writable_bytes(fds[s].fd), hangup);
                }
            }
        }
        if (clocks) {
            int64_t after = monotonic_ns();
            for (uint32_t i = 0; i < count; i++) {
                if (subs[i].slot < 0 && subs[i].deadline <= after) {
                    put_event(events + (size_t)nevents++ * EVENT_SIZE, subs[i].userdata, subs[i].tag, 0, 0);
                }
            }
        }
        if (nevents) {
            break;
        }
    }
    memcpy(state->base + out, events, (size_t)nevents * EVENT_SIZE);
    store32(state, nevents_ptr, nevents);
    state->counters->polls++;
    remember_answer(state, raw, count, events, nevents);
    return answer(state, args, 0);
}
