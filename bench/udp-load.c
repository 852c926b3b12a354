/* udp-load: the client side of bench/guest-io.sh, one program for both
 * peers (the kv guest and the host-side kv-host.py), so any difference
 * in the figures is the server's, not the client's.  Written in C with
 * sendmmsg/recvmmsg so that it is not what limits the host-side case.
 *
 *   udp-load lat   ADDR PORT COUNT SECONDS   sequential INCRs with ids (one in
 *                                            flight): round trip per request
 *   udp-load tput  ADDR PORT WINDOW SECONDS  WINDOW INCRs in flight at all times
 *   udp-load blast ADDR PORT SECONDS BYTES   UDP datagrams of BYTES payload, as
 *                                            fast as this process sends them
 *   udp-load tapsink TAP MAC SECONDS         the host-alone peer of blast: read
 *                                            frames from tap TAP (already in a
 *                                            bridge) for SECONDS, one read() per
 *                                            frame as Tandem's VMM does, after
 *                                            one frame from MAC so the bridge
 *                                            learns MAC on that port; prints
 *                                            frames=<n> (all) for_mac=<n>
 *
 * Requests follow tests/guests/README.md, "kv protocol":
 * "INCR k<n> id=<id>" -> "k<n> <value> id=<id>".  Every answer is
 * checked: its id must be one in flight and, for lat, each key's value
 * must rise by exactly one per answer.
 *
 * UDP_LOAD_WAIT_MS (default 200) in the environment: how long an answer
 * is waited for before lat resends the same id and tput counts it lost;
 * under Remus's output commit an answer takes about one interval, so
 * bench/remus.sh raises it.
 *
 * Output: one line of key=value words on stdout (times in microseconds,
 * cpu_pct = this process's user+system time over the measured wall time).
 * Exit status: 0 ok, 1 failed (no answers, errors), 2 usage. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ANSWER_MAX 256
#define BATCH 64
#define KEYS 64
static int64_t wait_ns = 200000000LL;  /* lat resends, tput counts lost, after this */
#define TPUT_WARMUP_NS 300000000LL      /* not counted: ARP, caches, ramp-up */
#define WINDOW_MAX 1024

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000LL +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000LL;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of n sorted values: nearest rank. */
static int64_t percentile(const int64_t *v, size_t n, double p)
{
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return v[rank - 1];
}

static int open_socket(const char *addr, const char *port, struct sockaddr_in *to)
{
    memset(to, 0, sizeof(*to));
    to->sin_family = AF_INET;
    to->sin_port = htons((uint16_t)atoi(port));
    if (inet_pton(AF_INET, addr, &to->sin_addr) != 1) {
        fprintf(stderr, "udp-load: %s: not an IPv4 address\n", addr);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) {
        perror("udp-load: socket");
        return -1;
    }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    /* connect(): the kernel filters out datagrams from anyone else and
     * send needs no address. */
    if (connect(fd, (struct sockaddr *)to, sizeof(*to)) < 0) {
        perror("udp-load: connect");
        close(fd);
        return -1;
    }
    return fd;
}

/* Parses "k<key> <value> id=<id>"; false if it is anything else. */
static bool parse_answer(char *s, size_t len, unsigned *key, uint64_t *value, uint64_t *id)
{
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r'))
        len--;
    s[len] = '\0';
    char tail;
    return sscanf(s, "k%u %" SCNu64 " id=%" SCNu64 "%c", key, value, id, &tail) == 3;
}

static int format_request(char *buf, size_t len, unsigned key, uint64_t id)
{
    return snprintf(buf, len, "INCR k%u id=%" PRIu64, key, id);
}

/* ---- lat: one request in flight ----------------------------------------- */

static int run_lat(int fd, long count, double seconds)
{
    int64_t *rtt = calloc((size_t)count, sizeof(*rtt));
    uint64_t last[KEYS];
    bool known[KEYS] = { false };
    char req[96], ans[ANSWER_MAX + 1];
    uint64_t id = (uint64_t)time(NULL) << 20;
    long done = 0, retries = 0, errors = 0, strays = 0;
    if (!rtt)
        return 1;
    const int64_t t_start = now_ns(), c_start = cpu_ns();
    const int64_t t_end = t_start + (int64_t)(seconds * 1e9);
    while (done < count && now_ns() < t_end) {
        unsigned key = (unsigned)(done % KEYS);
        int n = format_request(req, sizeof(req), key, ++id);
        int64_t t0 = now_ns(), resend_at = t0 + wait_ns;
        bool answered = false;
        if (send(fd, req, (size_t)n, 0) != n) {
            perror("udp-load: send");
            return 1;
        }
        while (!answered) {
            int64_t now = now_ns();
            if (now >= t0 + 5 * 1000000000LL) {
                fprintf(stderr, "udp-load: no answer to '%s' within 5 s\n", req);
                free(rtt);
                return 1;
            }
            if (now >= resend_at) {
                retries++;
                send(fd, req, (size_t)n, 0);
                resend_at = now + wait_ns;
            }
            /* Spin briefly on the socket, then sleep in poll: the spin
             * keeps a poll wake-up out of the sub-100-us figures. */
            ssize_t r = recv(fd, ans, ANSWER_MAX, 0);
            if (r < 0 && errno == EAGAIN) {
                if (now - t0 > 20000) {
                    struct pollfd p = { .fd = fd, .events = POLLIN };
                    poll(&p, 1, 1);
                }
                continue;
            }
            if (r < 0) {
                perror("udp-load: recv");
                free(rtt);
                return 1;
            }
            int64_t t1 = now_ns();
            unsigned k;
            uint64_t v, aid;
            if (!parse_answer(ans, (size_t)r, &k, &v, &aid)) {
                errors++;
                fprintf(stderr, "udp-load: bad answer '%s' to '%s'\n", ans, req);
                continue;
            }
            if (aid != id) {
                strays++;       /* the answer to an earlier, resent request */
                continue;
            }
            if (k != key || (known[key] && v != last[key] + 1)) {
                errors++;
                fprintf(stderr, "udp-load: '%s' answered '%s' (last value %" PRIu64 ")\n", req, ans,
                        known[key] ? last[key] : 0);
            }
            known[key] = true;
            last[key] = v;
            rtt[done++] = t1 - t0;
            answered = true;
        }
    }
    const int64_t wall = now_ns() - t_start, cpu = cpu_ns() - c_start;
    if (!done) {
        fprintf(stderr, "udp-load: no answers\n");
        free(rtt);
        return 1;
    }
    qsort(rtt, (size_t)done, sizeof(*rtt), cmp_i64);
    printf("requests=%ld median_us=%.1f p99_us=%.1f min_us=%.1f max_us=%.1f retries=%ld strays=%ld "
           "errors=%ld seconds=%.3f cpu_pct=%.0f\n",
           done, percentile(rtt, (size_t)done, 50) / 1e3, percentile(rtt, (size_t)done, 99) / 1e3,
           rtt[0] / 1e3, rtt[done - 1] / 1e3, retries, strays, errors, wall / 1e9, 100.0 * cpu / wall);
    free(rtt);
    return errors ? 1 : 0;
}

/* ---- tput: a window of requests in flight ------------------------------- */

struct slot {
    bool busy;
    uint64_t id;
    int64_t sent_ns;
};

static int run_tput(int fd, int window, double seconds)
{
    static struct slot slots[WINDOW_MAX];
    static char reqbuf[BATCH][96], ansbuf[BATCH][ANSWER_MAX + 1];
    struct mmsghdr msgs[BATCH];
    struct iovec iovs[BATCH];
    int64_t *rtt = NULL;
    size_t nrtt = 0, rtt_cap = 0;
    uint64_t id = (uint64_t)time(NULL) << 20;
    long answered = 0, lost = 0, late = 0, errors = 0, send_full = 0;
    uint64_t req_bytes = 0, ans_bytes = 0;
    int busy = 0;
    bool measuring = false;
    int64_t t_measure = 0, c_measure = 0, t_end = 0;
    const int64_t t_start = now_ns();
    const int64_t t_warm = t_start + TPUT_WARMUP_NS;

    for (;;) {
        int64_t now = now_ns();
        if (!measuring && now >= t_warm) {
            measuring = true;
            answered = lost = late = errors = send_full = 0;
            req_bytes = ans_bytes = 0;
            nrtt = 0;
            t_measure = now;
            c_measure = cpu_ns();
            t_end = now + (int64_t)(seconds * 1e9);
        }
        if (measuring && now >= t_end)
            break;
        /* Requests whose answer is overdue are lost: their slots go back. */
        for (int i = 0; i < window; i++) {
            if (slots[i].busy && now - slots[i].sent_ns > wait_ns) {
                slots[i].busy = false;
                busy--;
                lost++;
            }
        }
        /* Fill the window, BATCH datagrams per sendmmsg. */
        while (busy < window) {
            int n = 0, idx[BATCH];
            for (int i = 0; i < window && n < BATCH; i++) {
                if (slots[i].busy)
                    continue;
                uint64_t rid = ++id;
                int len = format_request(reqbuf[n], sizeof(reqbuf[n]), (unsigned)(rid % KEYS), rid);
                iovs[n] = (struct iovec){ reqbuf[n], (size_t)len };
                memset(&msgs[n], 0, sizeof(msgs[n]));
                msgs[n].msg_hdr.msg_iov = &iovs[n];
                msgs[n].msg_hdr.msg_iovlen = 1;
                slots[i] = (struct slot){ true, rid, now };
                idx[n++] = i;
            }
            int sent = sendmmsg(fd, msgs, (unsigned)n, 0);
            if (sent < 0)
                sent = 0;
            for (int j = 0; j < n; j++) {
                if (j < sent) {
                    req_bytes += iovs[j].iov_len;
                    busy++;
                } else {
                    slots[idx[j]].busy = false;
                }
            }
            if (sent < n) {
                send_full++;
                break;          /* socket buffer full: wait for answers */
            }
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 10) <= 0)
            continue;
        for (int i = 0; i < BATCH; i++) {
            iovs[i] = (struct iovec){ ansbuf[i], ANSWER_MAX };
            memset(&msgs[i], 0, sizeof(msgs[i]));
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int got = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
        int64_t t1 = now_ns();
        for (int j = 0; j < got; j++) {
            unsigned k;
            uint64_t v, aid;
            if (!parse_answer(ansbuf[j], msgs[j].msg_len, &k, &v, &aid)) {
                if (errors++ < 3)
                    fprintf(stderr, "udp-load: bad answer '%s'\n", ansbuf[j]);
                continue;
            }
            int i;
            for (i = 0; i < window; i++)
                if (slots[i].busy && slots[i].id == aid)
                    break;
            if (i == window) {
                late++;         /* answered after we counted it lost */
                continue;
            }
            if (k != aid % KEYS) {
                if (errors++ < 3)
                    fprintf(stderr, "udp-load: answer '%s' names the wrong key\n", ansbuf[j]);
            }
            slots[i].busy = false;
            busy--;
            answered++;
            ans_bytes += msgs[j].msg_len;
            if (nrtt == rtt_cap) {
                rtt_cap = rtt_cap ? 2 * rtt_cap : 65536;
                int64_t *grown = realloc(rtt, rtt_cap * sizeof(*rtt));
                if (!grown)
                    return 1;
                rtt = grown;
            }
            rtt[nrtt++] = t1 - slots[i].sent_ns;
        }
    }
    const int64_t wall = now_ns() - t_measure, cpu = cpu_ns() - c_measure;
    if (!answered) {
        fprintf(stderr, "udp-load: no answers (lost %ld)\n", lost);
        return 1;
    }
    qsort(rtt, nrtt, sizeof(*rtt), cmp_i64);
    const double s = wall / 1e9;
    printf("window=%d answered=%ld req_s=%.0f bytes_s=%.0f req_bytes=%" PRIu64 " ans_bytes=%" PRIu64
           " lost=%ld late=%ld errors=%ld send_full=%ld median_us=%.1f p99_us=%.1f seconds=%.3f cpu_pct=%.0f\n",
           window, answered, answered / s, (req_bytes + ans_bytes) / s, req_bytes, ans_bytes, lost, late,
           errors, send_full, percentile(rtt, nrtt, 50) / 1e3, percentile(rtt, nrtt, 99) / 1e3, s,
           100.0 * cpu / wall);
    free(rtt);
    return errors ? 1 : 0;
}

/* ---- blast: datagrams one way, as fast as we can ------------------------ */

static int run_blast(int fd, double seconds, int bytes)
{
    static char payload[1472];
    struct mmsghdr msgs[BATCH];
    struct iovec iov = { payload, (size_t)bytes };
    uint64_t sent = 0, refused = 0;
    memset(payload, 'x', sizeof(payload));
    for (int i = 0; i < BATCH; i++) {
        memset(&msgs[i], 0, sizeof(msgs[i]));
        msgs[i].msg_hdr.msg_iov = &iov;
        msgs[i].msg_hdr.msg_iovlen = 1;
    }
    const int64_t t_start = now_ns(), c_start = cpu_ns();
    const int64_t t_end = t_start + (int64_t)(seconds * 1e9);
    while (now_ns() < t_end) {
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n > 0) {
            sent += (uint64_t)n;
        } else if (errno == EAGAIN || errno == ENOBUFS) {
            refused++;
            struct pollfd p = { .fd = fd, .events = POLLOUT };
            poll(&p, 1, 1);
        } else if (errno == ECONNREFUSED) {
            /* An ICMP port-unreachable from the peer, reported on the
             * next send of a connected socket: not a failure here. */
        } else {
            perror("udp-load: sendmmsg");
            return 1;
        }
    }
    const int64_t wall = now_ns() - t_start, cpu = cpu_ns() - c_start;
    printf("sent=%" PRIu64 " pps=%.0f bytes=%d refused=%" PRIu64 " seconds=%.3f cpu_pct=%.0f\n", sent,
           sent / (wall / 1e9), bytes, refused, wall / 1e9, 100.0 * cpu / wall);
    return sent ? 0 : 1;
}

/* ---- tapsink: frames out of a tap, counted -------------------------------- */

static int run_tapsink(const char *tap, const char *mac_text, double seconds)
{
    unsigned m[6];
    uint8_t frame[65536];
    if (sscanf(mac_text, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) {
        fprintf(stderr, "udp-load: %s: not a MAC address\n", mac_text);
        return 2;
    }
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        perror("udp-load: /dev/net/tun");
        return 1;
    }
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", tap);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        fprintf(stderr, "udp-load: TUNSETIFF %s: %s\n", tap, strerror(errno));
        return 1;
    }
    /* A broadcast from MAC (a local experimental ethertype) teaches the
     * bridge which port MAC is behind, as a guest's first frame does. */
    memset(frame, 0, 60);
    memset(frame, 0xff, 6);
    for (int i = 0; i < 6; i++)
        frame[6 + i] = (uint8_t)m[i];
    frame[12] = 0x88;
    frame[13] = 0xb5;
    /* Several, some time apart: the bridge port forwards (and learns)
     * only a moment after the tap's carrier came up with TUNSETIFF. */
    for (int i = 0; i < 5; i++) {
        struct timespec gap = { 0, 50000000 };
        nanosleep(&gap, NULL);
        if (write(fd, frame, 60) != 60) {
            perror("udp-load: write to the tap");
            return 1;
        }
    }
    /* Non-blocking and drained until empty, as the VMM's receive loop
     * reads its tap.  Then a 100-us nap rather than a poll(): a reader
     * waiting on the queue makes the sender pay a wake-up per frame
     * (costly here, nested), and the sender is the figure's limit that
     * the guest is compared with.  At 100 us the 1000-frame queue
     * overflows only above 10 M frames/s. */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    printf("ready\n");
    fflush(stdout);
    uint64_t frames = 0, for_mac = 0;
    const int64_t t_start = now_ns(), t_end = t_start + (int64_t)(seconds * 1e9);
    for (;;) {
        int64_t now = now_ns();
        if (now >= t_end)
            break;
        ssize_t r = read(fd, frame, sizeof(frame));
        if (r < 0 && errno == EAGAIN) {
            struct timespec nap = { 0, 100000 };
            nanosleep(&nap, NULL);
            continue;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            perror("udp-load: read from the tap");
            return 1;
        }
        frames++;
        if (r >= 14 && frame[0] == m[0] && frame[1] == m[1] && frame[2] == m[2] && frame[3] == m[3] &&
            frame[4] == m[4] && frame[5] == m[5])
            for_mac++;
    }
    printf("frames=%" PRIu64 " for_mac=%" PRIu64 " seconds=%.3f\n", frames, for_mac, (now_ns() - t_start) / 1e9);
    return 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: udp-load lat ADDR PORT COUNT SECONDS\n"
                    "       udp-load tput ADDR PORT WINDOW SECONDS\n"
                    "       udp-load blast ADDR PORT SECONDS BYTES\n"
                    "       udp-load tapsink TAP MAC SECONDS\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc == 5 && !strcmp(argv[1], "tapsink"))
        return run_tapsink(argv[2], argv[3], atof(argv[4]));
    if (argc != 6)
        return usage();
    struct sockaddr_in to;
    const char *mode = argv[1];
    const char *wait = getenv("UDP_LOAD_WAIT_MS");
    if (wait && *wait) {
        char *end;
        long ms = strtol(wait, &end, 10);
        if (*end || ms < 1 || ms > 60000) {
            fprintf(stderr, "udp-load: UDP_LOAD_WAIT_MS must be 1..60000, not '%s'\n", wait);
            return 2;
        }
        wait_ns = ms * 1000000LL;
    }
    if (strcmp(mode, "lat") && strcmp(mode, "tput") && strcmp(mode, "blast"))
        return usage();
    int fd = open_socket(argv[2], argv[3], &to);
    if (fd < 0)
        return 1;
    if (!strcmp(mode, "lat")) {
        long count = atol(argv[4]);
        return count > 0 ? run_lat(fd, count, atof(argv[5])) : usage();
    }
    if (!strcmp(mode, "tput")) {
        int window = atoi(argv[4]);
        return window > 0 && window <= WINDOW_MAX ? run_tput(fd, window, atof(argv[5])) : usage();
    }
    int bytes = atoi(argv[5]);
    return bytes >= 0 && bytes <= 1472 ? run_blast(fd, atof(argv[4]), bytes) : usage();
}
