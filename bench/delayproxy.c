/* delayproxy: a TCP proxy that puts a fixed network distance (a round-trip
 * time) between the bench and its database, since this kernel has no netem.
 *
 * Why C: a sub-millisecond hold needs sub-millisecond timers. Python's
 * asyncio sleeps on epoll, whose timeout has millisecond resolution; here each
 * chunk is stamped with the kernel's receive time (SO_TIMESTAMPNS) and written
 * at an absolute deadline (clock_nanosleep, then a short spin): never early,
 * and late by microseconds, not by a thread's wake-up.
 *
 * What it models: every byte takes RTT/2 each way, in order. Connection set-up
 * as TCP does it: the client's connect() would take one RTT and the server
 * would see the final ACK half an RTT later, so the client's first bytes reach
 * the server no earlier than 1.5 RTT after accept, and the server's first bytes
 * reach the client no earlier than 2 RTT after accept. EOF travels like data.
 *
 * Design: one process; per connection a reader and a writer thread per
 * direction. The reader queues each chunk with its due time; the writer sleeps
 * until the head's due time and writes it, so a chunk is never held longer
 * than its own delay (or the chunk before it, to keep order).
 *
 * Usage: delayproxy --rtt-us N --upstream HOST:PORT [--listen HOST:PORT]
 * prints "listening HOST PORT" once bound, serves until SIGTERM/SIGINT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_MAX 65536
#define QUEUE_CAP (4 << 20) /* bytes held per direction before the reader waits (backpressure) */

typedef int64_t ns_t; /* CLOCK_REALTIME, the clock of SO_TIMESTAMPNS */

struct chunk {
    struct chunk *next;
    ns_t due;
    size_t len; /* 0: end of stream */
    char data[];
};

struct direction {
    int src, dst;
    ns_t floor; /* the earliest the first chunk may be delivered */
    int started;
    pthread_mutex_t lock;
    pthread_cond_t more, room;
    struct chunk *head, *tail;
    size_t queued;
    int broken; /* dst failed: drop what comes, stop reading */
};

struct conn {
    int client, upstream;
    ns_t accepted;
    pthread_mutex_t lock;
    int threads; /* alive; the last one closes and frees */
    struct direction up, down; /* client->upstream, upstream->client */
};

static ns_t half_rtt;
static struct sockaddr_storage upstream_addr;
static socklen_t upstream_len;
static pthread_attr_t thread_attr;

static ns_t now(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (ns_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* A timer wakes a thread tens of microseconds late here (a VM: ~30 us, even
 * with the timer slack at 1 ns), a tenth of the hold. So sleep until a little
 * before the due time and spin the rest. How early is learned from recent
 * wake-ups, leaning to the quick ones and capped, so that a busy machine's
 * late wake-ups do not turn into long spins that make it busier. */
#define LEAD_MAX 100000
static _Atomic ns_t wake_late = 40000;

static void sleep_until(ns_t due) {
    ns_t late = wake_late, alarm = due - late - 5000;
    if (alarm > now()) {
        struct timespec t = {.tv_sec = alarm / 1000000000, .tv_nsec = alarm % 1000000000};
        while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &t, NULL) == EINTR) {
        }
        ns_t woke = now() - alarm;
        late += woke < late ? (woke - late) / 4 : (woke - late) / 64;
        wake_late = late < LEAD_MAX ? late : LEAD_MAX;
    }
    while (now() < due) {
    }
}

static void tune(int fd) {
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

static void release(struct conn *c) {
    pthread_mutex_lock(&c->lock);
    int last = --c->threads == 0;
    pthread_mutex_unlock(&c->lock);
    if (!last)
        return;
    close(c->client);
    close(c->upstream);
    struct direction *ds[] = {&c->up, &c->down};
    for (int i = 0; i < 2; i++) {
        struct chunk *k = ds[i]->head;
        while (k) {
            struct chunk *next = k->next;
            free(k);
            k = next;
        }
        pthread_mutex_destroy(&ds[i]->lock);
        pthread_cond_destroy(&ds[i]->more);
        pthread_cond_destroy(&ds[i]->room);
    }
    pthread_mutex_destroy(&c->lock);
    free(c);
}

static int enqueue(struct direction *d, const char *data, size_t len, ns_t arrived) {
    struct chunk *k = malloc(sizeof *k + len);
    if (!k)
        return -1;
    k->next = NULL;
    k->len = len;
    if (len)
        memcpy(k->data, data, len);
    k->due = arrived + half_rtt;
    pthread_mutex_lock(&d->lock);
    if (!d->started && k->due < d->floor)
        k->due = d->floor;
    d->started = 1;
    if (d->tail)
        d->tail->next = k;
    else
        d->head = k;
    d->tail = k;
    d->queued += len;
    pthread_cond_signal(&d->more);
    pthread_mutex_unlock(&d->lock);
    return 0;
}

static void read_direction(struct direction *d) {
    char *buf = malloc(CHUNK_MAX);
    char control[CMSG_SPACE(sizeof(struct timespec))];
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (d->queued > QUEUE_CAP && !d->broken)
            pthread_cond_wait(&d->room, &d->lock);
        int broken = d->broken;
        pthread_mutex_unlock(&d->lock);
        if (broken || !buf)
            break;
        struct iovec iov = {.iov_base = buf, .iov_len = CHUNK_MAX};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                             .msg_controllen = sizeof control};
        ssize_t n = recvmsg(d->src, &msg, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF, or an error (e.g. reset): both end this direction */
        ns_t arrived = 0;
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec t;
                memcpy(&t, CMSG_DATA(cm), sizeof t);
                arrived = (ns_t)t.tv_sec * 1000000000 + t.tv_nsec;
            }
        }
        if (enqueue(d, buf, (size_t)n, arrived ? arrived : now()) != 0)
            break; /* out of memory: end this direction */
    }
    free(buf);
    if (enqueue(d, NULL, 0, now()) != 0)
        abort(); /* the writer would wait for this end forever */
}

static void write_direction(struct direction *d) {
    prctl(PR_SET_TIMERSLACK, 1UL); /* the default 50 us slack would dwarf a 250 us hold */
    for (;;) {
        pthread_mutex_lock(&d->lock);
        while (!d->head)
            pthread_cond_wait(&d->more, &d->lock);
        struct chunk *k = d->head;
        d->head = k->next;
        if (!d->head)
            d->tail = NULL;
        d->queued -= k->len;
        int broken = d->broken;
        pthread_cond_signal(&d->room);
        pthread_mutex_unlock(&d->lock);
        if (k->len == 0) {
            if (!broken) {
                sleep_until(k->due);
                shutdown(d->dst, SHUT_WR);
            }
            free(k);
            return;
        }
        if (!broken) {
            sleep_until(k->due);
            for (size_t off = 0; off < k->len;) {
                ssize_t w = send(d->dst, k->data + off, k->len - off, MSG_NOSIGNAL);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) { /* dst is gone: stop its source too, drop the rest */
                    pthread_mutex_lock(&d->lock);
                    d->broken = 1;
                    pthread_cond_signal(&d->room);
                    pthread_mutex_unlock(&d->lock);
                    shutdown(d->src, SHUT_RD); /* wakes the reader with EOF */
                    break;
                }
                off += (size_t)w;
            }
        }
        free(k);
    }
}

struct job {
    struct conn *c;
    struct direction *d;
};

static void *reader(void *arg) {
    struct job *j = arg;
    read_direction(j->d);
    release(j->c);
    free(j);
    return NULL;
}

static void *writer(void *arg) {
    struct job *j = arg;
    write_direction(j->d);
    release(j->c);
    free(j);
    return NULL;
}

static int spawn(void *(*fn)(void *), struct conn *c, struct direction *d) {
    struct job *j = malloc(sizeof *j);
    pthread_t t;
    if (!j)
        return -1;
    j->c = c;
    j->d = d;
    if (pthread_create(&t, &thread_attr, fn, j) != 0) {
        free(j);
        return -1;
    }
    return 0;
}

static void init_direction(struct direction *d, int src, int dst, ns_t floor) {
    memset(d, 0, sizeof *d);
    d->src = src;
    d->dst = dst;
    d->floor = floor;
    pthread_mutex_init(&d->lock, NULL);
    pthread_cond_init(&d->more, NULL);
    pthread_cond_init(&d->room, NULL);
}

/* The connection's first thread: connects upstream, starts the other three,
 * then reads from the client. */
static void *serve(void *arg) {
    struct conn *c = arg;
    c->upstream = socket(upstream_addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->upstream < 0 || connect(c->upstream, (struct sockaddr *)&upstream_addr, upstream_len) < 0) {
        perror("delayproxy: connect upstream");
        if (c->upstream >= 0)
            close(c->upstream);
        close(c->client);
        free(c);
        return NULL;
    }
    tune(c->upstream);
    init_direction(&c->up, c->client, c->upstream, c->accepted + 3 * half_rtt);
    init_direction(&c->down, c->upstream, c->client, c->accepted + 4 * half_rtt);
    pthread_mutex_init(&c->lock, NULL);
    c->threads = 4;
    void *(*fns[])(void *) = {writer, writer, reader};
    struct direction *ds[] = {&c->up, &c->down, &c->down};
    int started = 0;
    while (started < 3 && spawn(fns[started], c, ds[started]) == 0)
        started++;
    if (started < 3) { /* end the connection; the threads that run see EOF */
        fprintf(stderr, "delayproxy: cannot start a thread\n");
        shutdown(c->client, SHUT_RDWR);
        shutdown(c->upstream, SHUT_RDWR);
        pthread_mutex_lock(&c->lock);
        c->threads -= 3 - started;
        pthread_mutex_unlock(&c->lock);
        if (started == 2 && enqueue(&c->down, NULL, 0, now()) != 0) /* its writer runs without its reader */
            abort();
    }
    read_direction(&c->up);
    release(c);
    return NULL;
}

static int split_hostport(const char *arg, char *host, size_t hostlen, char **port) {
    const char *colon = strrchr(arg, ':');
    if (!colon || (size_t)(colon - arg) >= hostlen)
        return -1;
    const char *start = arg;
    size_t len = (size_t)(colon - arg);
    if (len >= 2 && arg[0] == '[' && arg[len - 1] == ']') { /* [::1]:port */
        start++;
        len -= 2;
    }
    memcpy(host, start, len);
    host[len] = '\0';
    *port = (char *)colon + 1;
    return 0;
}

static int resolve(const char *arg, int passive, struct addrinfo **out) {
    char host[256], *port;
    if (split_hostport(arg, host, sizeof host, &port) != 0) {
        fprintf(stderr, "delayproxy: expected HOST:PORT, got %s\n", arg);
        return -1;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = passive ? AI_PASSIVE : 0};
    int e = getaddrinfo(host, port, &hints, out);
    if (e != 0) {
        fprintf(stderr, "delayproxy: %s: %s\n", arg, gai_strerror(e));
        return -1;
    }
    return 0;
}

static void on_signal(int sig) {
    (void)sig;
    _exit(0);
}

int main(int argc, char **argv) {
    const char *listen_arg = "127.0.0.1:0", *upstream_arg = NULL;
    long rtt_us = -1;
    for (int i = 1; i + 1 < argc; i += 2) {
        char *end;
        if (strcmp(argv[i], "--rtt-us") == 0) {
            rtt_us = strtol(argv[i + 1], &end, 10);
            if (*end)
                rtt_us = -1;
        } else if (strcmp(argv[i], "--upstream") == 0)
            upstream_arg = argv[i + 1];
        else if (strcmp(argv[i], "--listen") == 0)
            listen_arg = argv[i + 1];
        else
            break;
    }
    if (rtt_us < 0 || !upstream_arg || argc % 2 == 0) {
        fprintf(stderr, "usage: %s --rtt-us N --upstream HOST:PORT [--listen HOST:PORT]\n", argv[0]);
        return 2;
    }
    half_rtt = (ns_t)rtt_us * 1000 / 2;

    struct addrinfo *up, *ls;
    if (resolve(upstream_arg, 0, &up) != 0 || resolve(listen_arg, 1, &ls) != 0)
        return 2;
    memcpy(&upstream_addr, up->ai_addr, up->ai_addrlen);
    upstream_len = up->ai_addrlen;
    freeaddrinfo(up);

    int lfd = socket(ls->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), on = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (lfd < 0 || bind(lfd, ls->ai_addr, ls->ai_addrlen) < 0 || listen(lfd, 512) < 0) {
        perror("delayproxy: listen");
        return 1;
    }
    freeaddrinfo(ls);

    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    char host[NI_MAXHOST], port[NI_MAXSERV];
    getsockname(lfd, (struct sockaddr *)&bound, &blen);
    getnameinfo((struct sockaddr *)&bound, blen, host, sizeof host, port, sizeof port,
                NI_NUMERICHOST | NI_NUMERICSERV);

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_attr_init(&thread_attr);
    pthread_attr_setdetachstate(&thread_attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&thread_attr, 256 << 10);

    printf("listening %s %s\n", host, port);
    fflush(stdout);

    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        ns_t accepted = now();
        if (fd < 0) {
            if (errno != EINTR && errno != ECONNABORTED) {
                perror("delayproxy: accept");
                usleep(10000); /* e.g. out of descriptors: let connections finish */
            }
            continue;
        }
        tune(fd);
        struct conn *c = calloc(1, sizeof *c);
        pthread_t t;
        if (!c) {
            close(fd);
            continue;
        }
        c->client = fd;
        c->accepted = accepted;
        if (pthread_create(&t, &thread_attr, serve, c) != 0) {
            fprintf(stderr, "delayproxy: cannot start a thread\n");
            close(fd);
            free(c);
        }
    }
}
