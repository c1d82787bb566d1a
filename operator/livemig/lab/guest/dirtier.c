/*
 * livemig lab guest: a paced memory dirtier.
 *
 * Runs as the only workload of the lab's busybox initramfs.  Its settings come from the kernel
 * command line (read from /proc/cmdline), so one guest image serves every experiment:
 *
 *   dirtier.wss_mib=128        writable working set in MiB (filled with non-zero data first)
 *   dirtier.rate=2000          target pages dirtied per second (0 = as fast as the vCPU can)
 *   dirtier.bpp=8              bytes written per dirtied page (1..4096)
 *   dirtier.pattern=sequential sequential | random | hot-cold
 *   dirtier.hot_pct=10         hot-cold: size of the hot region, percent of the working set
 *   dirtier.hot_share=90       hot-cold: percent of writes that go to the hot region
 *   dirtier.report_ms=2000     how often to report on the console
 *
 * It writes in 10 ms slots paced against CLOCK_MONOTONIC with absolute deadlines, and reports the
 * rate it really achieved, one line per report period, on the serial console:
 *
 *   DIRTY t=12.003 pages=3998 rate=1998 target=2000 wss_pages=32768 pattern=sequential busy=0.012
 *
 * `t` is guest monotonic seconds, `rate` the pages dirtied per second over the last period, `busy` the
 * share of the vCPU the guest spent not idle in that period (/proc/stat; the dirtier is the only workload).  If the
 * guest is frozen (a stopped source, a post-copy fault), the next period's rate shows it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define SLOT_NS 10000000L /* 10 ms */

enum pattern { SEQUENTIAL, RANDOM, HOT_COLD };

struct config {
    unsigned long wss_mib;
    unsigned long rate;
    unsigned long bpp;
    enum pattern pattern;
    unsigned long hot_pct;
    unsigned long hot_share;
    unsigned long report_ms;
};

static const char *pattern_name(enum pattern p)
{
    switch (p) {
    case RANDOM:
        return "random";
    case HOT_COLD:
        return "hot-cold";
    default:
        return "sequential";
    }
}

static void parse_cmdline(struct config *cfg)
{
    char buf[4096];
    FILE *f = fopen("/proc/cmdline", "r");
    if (!f) {
        fprintf(stderr, "DIRTIER warning: cannot read /proc/cmdline (%s), using defaults\n", strerror(errno));
        return;
    }
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    for (char *tok = strtok(buf, " \t\n"); tok; tok = strtok(NULL, " \t\n")) {
        if (strncmp(tok, "dirtier.", 8) != 0)
            continue;
        char *key = tok + 8;
        char *val = strchr(key, '=');
        if (!val)
            continue;
        *val++ = '\0';
        if (!strcmp(key, "wss_mib"))
            cfg->wss_mib = strtoul(val, NULL, 10);
        else if (!strcmp(key, "rate"))
            cfg->rate = strtoul(val, NULL, 10);
        else if (!strcmp(key, "bpp"))
            cfg->bpp = strtoul(val, NULL, 10);
        else if (!strcmp(key, "hot_pct"))
            cfg->hot_pct = strtoul(val, NULL, 10);
        else if (!strcmp(key, "hot_share"))
            cfg->hot_share = strtoul(val, NULL, 10);
        else if (!strcmp(key, "report_ms"))
            cfg->report_ms = strtoul(val, NULL, 10);
        else if (!strcmp(key, "pattern")) {
            if (!strcmp(val, "random"))
                cfg->pattern = RANDOM;
            else if (!strcmp(val, "hot-cold"))
                cfg->pattern = HOT_COLD;
            else if (!strcmp(val, "sequential"))
                cfg->pattern = SEQUENTIAL;
            else
                printf("DIRTIER warning: unknown pattern %s, using sequential\n", val);
        } else
            printf("DIRTIER warning: unknown setting dirtier.%s\n", key);
    }
}

/* Guest CPU time from /proc/stat: busy = all but idle and iowait (jiffies). */
static int cpu_times(unsigned long long *busy, unsigned long long *total)
{
    unsigned long long v[10] = {0};
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 5)
        return -1;
    *total = 0;
    for (int i = 0; i < n; i++)
        *total += v[i];
    *busy = *total - v[3] - v[4];
    return 0;
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

static inline uint64_t xorshift64(void)
{
    uint64_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return rng_state = x;
}

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline void add_ns(struct timespec *ts, long ns)
{
    ts->tv_nsec += ns;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_nsec -= 1000000000L;
        ts->tv_sec++;
    }
}

int main(void)
{
    struct config cfg = {128, 2000, 8, SEQUENTIAL, 10, 90, 2000};
    parse_cmdline(&cfg);
    if (cfg.wss_mib == 0)
        cfg.wss_mib = 1;
    if (cfg.bpp == 0)
        cfg.bpp = 1;
    if (cfg.bpp > PAGE)
        cfg.bpp = PAGE;
    if (cfg.hot_pct == 0 || cfg.hot_pct > 100)
        cfg.hot_pct = 10;
    if (cfg.hot_share > 100)
        cfg.hot_share = 90;
    if (cfg.report_ms < 100)
        cfg.report_ms = 100;
    setvbuf(stdout, NULL, _IOLBF, 0);

    unsigned long pages = cfg.wss_mib * 1024UL * 1024UL / PAGE;
    unsigned long hot_pages = pages * cfg.hot_pct / 100;
    if (hot_pages == 0)
        hot_pages = 1;
    unsigned long cold_pages = pages > hot_pages ? pages - hot_pages : 0;

    unsigned char *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
        printf("DIRTIER error: cannot map %lu MiB: %s\n", cfg.wss_mib, strerror(errno));
        return 1;
    }
    /* Fill with non-zero data so that QEMU cannot send the working set as zero pages. */
    for (unsigned long i = 0; i < pages * PAGE; i += 8)
        *(uint64_t *)(mem + i) = 0x0101010101010101ULL * ((i / PAGE) % 251 + 1) + i;
    printf("DIRTIER start wss_mib=%lu wss_pages=%lu rate=%lu bpp=%lu pattern=%s hot_pct=%lu hot_share=%lu\n",
           cfg.wss_mib, pages, cfg.rate, cfg.bpp, pattern_name(cfg.pattern), cfg.hot_pct, cfg.hot_share);

    unsigned long per_slot = cfg.rate / 100; /* pages per 10 ms slot */
    unsigned long remainder = cfg.rate % 100; /* spread the rest over the slots of one second */
    unsigned long cursor = 0, slot = 0, written = 0;
    unsigned char stamp = 1;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    double period_start = now_s(), report_every = (double)cfg.report_ms / 1000.0;
    unsigned long long busy0 = 0, total0 = 0, busy1, total1;
    cpu_times(&busy0, &total0);

    for (;;) {
        unsigned long todo = cfg.rate ? per_slot + ((slot % 100) < remainder ? 1 : 0) : 4096;
        for (unsigned long k = 0; k < todo; k++) {
            unsigned long page;
            switch (cfg.pattern) {
            case RANDOM:
                page = xorshift64() % pages;
                break;
            case HOT_COLD:
                if (cold_pages == 0 || xorshift64() % 100 < cfg.hot_share)
                    page = xorshift64() % hot_pages;
                else
                    page = hot_pages + xorshift64() % cold_pages;
                break;
            default:
                page = cursor;
                cursor = cursor + 1 == pages ? 0 : cursor + 1;
                if (cursor == 0)
                    stamp++;
            }
            unsigned char *p = mem + page * PAGE;
            for (unsigned long b = 0; b < cfg.bpp; b++)
                p[b] = (unsigned char)(stamp + b + (page & 0xff));
            if (cfg.pattern != SEQUENTIAL)
                stamp++;
        }
        written += todo;
        slot++;

        double t = now_s();
        if (t - period_start >= report_every) {
            double busy = -1.0;
            if (cpu_times(&busy1, &total1) == 0 && total1 > total0) {
                busy = (double)(busy1 - busy0) / (double)(total1 - total0);
                busy0 = busy1;
                total0 = total1;
            }
            printf("DIRTY t=%.3f pages=%lu rate=%.0f target=%lu wss_pages=%lu pattern=%s busy=%.3f\n", t, written,
                   (double)written / (t - period_start), cfg.rate, pages, pattern_name(cfg.pattern), busy);
            written = 0;
            period_start = t;
        }
        if (cfg.rate) {
            add_ns(&deadline, SLOT_NS);
            struct timespec cur;
            clock_gettime(CLOCK_MONOTONIC, &cur);
            /* More than a second behind (the guest was frozen or starved): do not try to catch up. */
            if (cur.tv_sec > deadline.tv_sec + 1)
                deadline = cur;
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &deadline, NULL) == EINTR)
                ;
        }
    }
}
