/* Runs a fuzz target without libFuzzer: feeds it every file named on the
 * command line, and every file under every directory named, once.  With no
 * names it replays $FUZZ_CORPUS/<target>, where the program fuzz_<target>
 * takes <target> from its own name, so `make check` replays each seed
 * corpus as a regression test.  Options (libFuzzer's -flags) are ignored. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLAY_MAX_INPUT (16 * 1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct replay {
    const char *prog;
    unsigned long inputs;
    int failed;
};

static void run_file(struct replay *rp, const char *path)
{
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "%s: %s: %s\n", rp->prog, path, strerror(errno));
        rp->failed = 1;
        return;
    }
    for (;;) {
        ssize_t n;
        if (len == cap) {
            uint8_t *nb;
            if (cap >= REPLAY_MAX_INPUT) {
                fprintf(stderr, "%s: %s: larger than %d bytes\n", rp->prog, path, REPLAY_MAX_INPUT);
                rp->failed = 1;
                goto out;
            }
            cap = cap ? cap * 2 : 4096;
            nb = realloc(buf, cap);
            if (!nb) {
                fprintf(stderr, "%s: %s: out of memory\n", rp->prog, path);
                rp->failed = 1;
                goto out;
            }
            buf = nb;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "%s: %s: %s\n", rp->prog, path, strerror(errno));
            rp->failed = 1;
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    /* An exact-size copy, so that reads past the end are caught. */
    {
        uint8_t *exact = malloc(len ? len : 1);
        if (!exact) {
            rp->failed = 1;
            goto out;
        }
        memcpy(exact, buf, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    rp->inputs++;
out:
    free(buf);
    close(fd);
}

static void run_path(struct replay *rp, const char *path)
{
    struct dirent **names;
    struct stat st;
    int n, i;

    if (stat(path, &st) < 0) {
        fprintf(stderr, "%s: %s: %s\n", rp->prog, path, strerror(errno));
        rp->failed = 1;
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        run_file(rp, path);
        return;
    }
    n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: %s: %s\n", rp->prog, path, strerror(errno));
        rp->failed = 1;
        return;
    }
    for (i = 0; i < n; i++) {
        char *sub;
        if (names[i]->d_name[0] != '.' &&
            asprintf(&sub, "%s/%s", path, names[i]->d_name) >= 0) {
            run_path(rp, sub);
            free(sub);
        }
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv)
{
    struct replay rp = { .prog = argv[0] };
    const char *base = strrchr(argv[0], '/');
    int i, named = 0;

    base = base ? base + 1 : argv[0];
    for (i = 1; i < argc; i++) {
        if (argv[i][0] == '-')
            continue;
        named = 1;
        run_path(&rp, argv[i]);
    }
    if (!named) {
        const char *corpus = getenv("FUZZ_CORPUS");
        const char *target = strncmp(base, "fuzz_", 5) == 0 ? base + 5 : base;
        char *dir;
        if (!corpus) {
            fprintf(stderr, "usage: %s FILE|DIR... (or set FUZZ_CORPUS)\n", argv[0]);
            return 2;
        }
        if (asprintf(&dir, "%s/%s", corpus, target) < 0)
            return 1;
        run_path(&rp, dir);
        free(dir);
    }
    printf("%s: %lu inputs replayed\n", base, rp.inputs);
    if (!rp.inputs) {
        fprintf(stderr, "%s: no inputs found\n", base);
        return 1;
    }
    return rp.failed;
}
