/* main.c - parley-bench: flags, the worker processes, the progress line, and
 * merging what the workers measured into the report.
 *
 *   parley-bench MODE [flags]      MODE: connect | pair | fanout | ramp | noisy
 *
 * The users must exist (parley bulk-users N --prefix P, which also gives
 * each its "bulk" signed-in session); tokens are minted here from the shared
 * secret, for that session (token_bulk_sid). tools/bench/run-stack.sh starts a whole stack
 * on free ports and runs this against it. */
#include "bench.h"
#include "config.h"
#include "report.h"
#include "token.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t bench_interrupted;

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

const char *bench_op_name(bench_op op)
{
    static const char *const names[] = {"text", "edit", "react", "delete"};
    return op >= OP_TEXT && op <= OP_DELETE ? names[op] : "?";
}

/* Parses --ops: "text" first, then each of edit, react, delete at most once,
 * delete last (a deleted message takes no edit or reaction). Returns 0 or -1
 * (message printed). */
static int bench_parse_ops(bench_cfg *cfg, const char *prog)
{
    char *copy = strdup(cfg->ops), *save = NULL;
    int seen = 0, bad = 0;
    cfg->nops = 0;
    for (char *t = strtok_r(copy, ",", &save); t && !bad; t = strtok_r(NULL, ",", &save)) {
        int op = -1;
        for (int i = OP_TEXT; i <= OP_DELETE; i++)
            if (!strcmp(t, bench_op_name((bench_op)i))) op = i;
        bad = op < 0 || (seen & (1 << op)) || (cfg->nops == 0) != (op == OP_TEXT) ||
              (seen & (1 << OP_DELETE));
        if (bad) break;
        seen |= 1 << op;
        cfg->op[cfg->nops++] = (bench_op)op;
    }
    free(copy);
    if (bad || cfg->nops == 0) {
        fprintf(stderr,
                "%s: --ops: text first, then any of edit, react, delete once each, delete "
                "last (e.g. text,edit,react,delete)\n",
                prog);
        return -1;
    }
    return 0;
}

static void bench_on_signal(int sig)
{
    (void)sig;
    bench_interrupted = 1;
}

static void bench_sleep_ms(int msec)
{
    struct timespec ts = {msec / 1000, (long)(msec % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void bench_loadavg(char *out, size_t size, double *load1)
{
    FILE *f = fopen("/proc/loadavg", "r");
    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)size, f)) {
            char *sp = out;
            for (int i = 0; i < 3 && sp; i++)
                sp = strchr(sp + 1, ' ');
            if (sp) *sp = '\0';
        }
        fclose(f);
    }
    if (load1) *load1 = atof(out);
}

static long long bench_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long long kb = -1;
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

/* CPU seconds (user + system) a process used so far; with children=1 those
 * of its waited-for children too. -1 if it is gone. */
static double bench_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static void bench_parse_cpu_pids(bench_cfg *cfg)
{
    char *copy = strdup(cfg->cpu_pids ? cfg->cpu_pids : ""), *save = NULL;
    cfg->ncpu = 0;
    for (char *t = strtok_r(copy, ",", &save); t && cfg->ncpu < BENCH_MAX_GW * 2;
         t = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(t, '=');
        if (!eq) continue;
        *eq = '\0';
        snprintf(cfg->cpu_name[cfg->ncpu], sizeof cfg->cpu_name[0], "%s", t);
        cfg->cpu_pid[cfg->ncpu++] = (pid_t)atoi(eq + 1);
    }
    free(copy);
}

static int bench_parse_gateways(bench_cfg *cfg, const char *prog)
{
    char *copy = strdup(cfg->gateways), *save = NULL;
    cfg->ngw = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *colon = strrchr(t, ':');
        long port = colon ? strtol(colon + 1, NULL, 10) : 0;
        if (!colon || port <= 0 || port > 65535 || cfg->ngw == BENCH_MAX_GW) {
            fprintf(stderr, "%s: --gateways: '%s' is not host:port (at most %d)\n", prog, t,
                    BENCH_MAX_GW);
            free(copy);
            return -1;
        }
        *colon = '\0';
        struct sockaddr_in *sa = &cfg->gw[cfg->ngw++];
        sa->sin_family = AF_INET;
        sa->sin_port = htons((uint16_t)port);
        if (strcmp(t, "localhost") == 0) t = "127.0.0.1";
        if (inet_pton(AF_INET, t, &sa->sin_addr) != 1) {
            fprintf(stderr, "%s: --gateways: '%s' is not an IPv4 address\n", prog, t);
            free(copy);
            return -1;
        }
    }
    free(copy);
    if (cfg->ngw == 0) {
        fprintf(stderr, "%s: --gateways is required (host:port,host:port)\n", prog);
        return -1;
    }
    cfg->npids = 0;
    if (cfg->pids && *cfg->pids) {
        copy = strdup(cfg->pids);
        for (char *t = strtok_r(copy, ",", &save); t && cfg->npids < BENCH_MAX_GW;
             t = strtok_r(NULL, ",", &save))
            cfg->gw_pid[cfg->npids++] = (pid_t)atoi(t);
        free(copy);
    }
    return 0;
}

/* Sums the workers' step counters and histograms into s. */
static void bench_merge_step(const bench_cfg *cfg, bench_shm *shm, report_step *s)
{
    uint64_t t0 = UINT64_MAX, tlast = 0;
    for (int w = 0; w < cfg->procs; w++) {
        bench_wstat *st = &shm->w[w];
        s->sent += st->sent;
        s->acked += st->acked;
        s->delivered += st->delivered;
        s->errors += st->errors;
        s->rate_limited += st->rate_limited;
        s->dups += st->dups;
        s->late += st->late;
        s->lost += st->lost;
        s->unacked += st->unacked;
        s->expected += st->expected;
        hist_merge(&s->lat, &st->lat_h);
        hist_merge(&s->last, &st->last_h);
        hist_merge(&s->ack, &st->ack_h);
        hist_merge(&s->lag, &st->lag_h);
        if (st->t0_ns && st->t0_ns < t0) t0 = st->t0_ns;
        if (st->tlast_ns > tlast) tlast = st->tlast_ns;
    }
    s->elapsed_s = tlast > t0 ? (double)(tlast - t0) / 1e9 : 0;
    s->delivered_per_s = s->elapsed_s > 0 ? (double)s->delivered / s->elapsed_s : 0;
    bench_loadavg((char[64]){0}, 64, &s->load1);
}

static int bench_workers_alive(const bench_cfg *cfg, pid_t *pids, char *err, size_t size)
{
    for (int w = 0; w < cfg->nworkers; w++) {
        int status;
        if (pids[w] > 0 && waitpid(pids[w], &status, WNOHANG) == pids[w]) {
            pids[w] = -1;
            snprintf(err, size, "worker %d died (%s %d)", w,
                     WIFSIGNALED(status) ? "signal" : "exit",
                     WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            return 0;
        }
    }
    return 1;
}

static void bench_progress(const bench_cfg *cfg, bench_shm *shm, const char *phase, uint64_t t0,
                           uint64_t *prev, int tty)
{
    uint64_t opened = 0, failed = 0, closed = 0, sent = 0, acked = 0, delivered = 0, conns = 0;
    for (int w = 0; w < cfg->procs; w++) {
        bench_wstat *st = &shm->w[w];
        conns += st->conns;
        opened += st->opened;
        failed += st->failed;
        closed += st->closed;
        sent += st->sent;
        acked += st->acked;
        delivered += st->delivered;
    }
    double el = (double)(bench_now_ns() - t0) / 1e9;
    char load[64];
    bench_loadavg(load, sizeof load, NULL);
    if (strcmp(phase, "connect") == 0 || strcmp(phase, "hold") == 0) {
        fprintf(stderr, "%s[%s %5.1fs] open %llu/%llu (%llu/s) failed %llu closed %llu load %s%s",
                tty ? "\r" : "", phase, el, (unsigned long long)(opened - closed),
                (unsigned long long)conns, (unsigned long long)(opened - prev[0]),
                (unsigned long long)failed, (unsigned long long)closed, load, tty ? "   " : "\n");
        prev[0] = opened;
    } else {
        char atk[160] = "";
        if (cfg->mode == MODE_NOISY)
            snprintf(
                atk, sizeof atk, " | attacker acked %llu limited %llu syncs %llu sessions %llu",
                (unsigned long long)shm->atk.g_acked, (unsigned long long)shm->atk.g_rate_limited,
                (unsigned long long)shm->atk.s_done, (unsigned long long)shm->atk.c_open);
        fprintf(stderr,
                "%s[%s %5.1fs] sent %llu acked %llu delivered %llu (%llu/s) open %llu load %s%s%s",
                tty ? "\r" : "", phase, el, (unsigned long long)sent, (unsigned long long)acked,
                (unsigned long long)delivered,
                (unsigned long long)(delivered >= prev[1] ? delivered - prev[1] : delivered),
                (unsigned long long)(opened - closed), load, atk, tty ? "   " : "\n");
        prev[1] = delivered;
    }
    fflush(stderr);
}

/* Runs one traffic step on every worker; fills s. Returns -1 if interrupted
 * or a worker died. */
static int bench_run_step(const bench_cfg *cfg, bench_shm *shm, pid_t *pids, int step, double rate,
                          double dur, report_step *s, report *r, int tty)
{
    char phase[32];
    uint64_t prev[2] = {0, 0}, t0 = bench_now_ns(), next = t0;
    double cpu0[BENCH_MAX_GW * 2], gen0 = 0;
    memset(s, 0, sizeof(*s));
    for (int i = 0; i < cfg->ncpu; i++)
        cpu0[i] = bench_cpu_s(cfg->cpu_pid[i]);
    for (int w = 0; w < cfg->nworkers; w++)
        gen0 += pids[w] > 0 ? bench_cpu_s(pids[w]) : 0;
    s->rate = rate;
    s->duration_s = dur;
    shm->ctl.rate = rate;
    shm->ctl.duration_s = dur;
    __sync_synchronize();
    shm->ctl.step = step;
    if (cfg->mode == MODE_NOISY && step >= 1 && step <= cfg->nphases)
        snprintf(phase, sizeof phase, "%s %s", cfg->mode_name, cfg->phase_name[step - 1]);
    else
        snprintf(phase, sizeof phase, "%s %s%s%.0f/s", cfg->mode_name,
                 cfg->nops > 1 ? bench_op_name(cfg->op[step - 1]) : "", cfg->nops > 1 ? " " : "",
                 rate);
    for (;;) {
        int done = 1;
        for (int w = 0; w < cfg->nworkers; w++)
            done &= shm->w[w].step_done >= step;
        if (done) break;
        if (bench_interrupted || !bench_workers_alive(cfg, pids, r->err, sizeof r->err)) return -1;
        if (cfg->progress && bench_now_ns() >= next) {
            bench_progress(cfg, shm, phase, t0, prev, tty);
            next += 1000000000ull;
        }
        bench_sleep_ms(20);
    }
    if (cfg->progress && tty) fputc('\n', stderr);
    for (int i = 0; i < cfg->ncpu; i++)
        s->cpu_s[i] = bench_cpu_s(cfg->cpu_pid[i]) - cpu0[i];
    for (int w = 0; w < cfg->nworkers; w++)
        s->gen_cpu_s += pids[w] > 0 ? bench_cpu_s(pids[w]) : 0;
    s->gen_cpu_s -= gen0;
    bench_merge_step(cfg, shm, s);
    uint64_t bound = (uint64_t)cfg->p99_bound_us * 1000ull;
    s->held = s->lost == 0 && s->unacked == 0 && s->errors == 0 && s->lat.count > 0 &&
              hist_quantile(&s->lat, 0.99) <= bound;
    if (cfg->mode == MODE_NOISY) {
        memcpy(&s->atk, &shm->atk, sizeof s->atk);
        s->held = s->held && hist_quantile(&s->ack, 0.99) <= bound;
    }
    return 0;
}

static const char *bench_usage =
    "MODE [flags]\n"
    "A load generator for Parley gateways (docs/benchmarks.md). MODE:\n"
    "  connect  open --connections authenticated WebSockets at --connect-rate, hold --hold s;\n"
    "           handshakes/s, connect time, gateway RSS per connection (--pids)\n"
    "  pair     --pairs sender/receiver pairs on different gateways, --rate msg/s total for\n"
    "           --duration s; send->delivery latency, delivered/s, lost\n"
    "  fanout   a group of --members users, one sending --rate msg/s; latency to the last member\n"
    "           pair and fanout: --ops text,edit,react,delete runs one step per op, the later\n"
    "           ones editing / reacting to / deleting each message of the text step once\n"
    "  ramp     pair traffic at --rate-start, +--rate-step each --step-seconds, until\n"
    "           --ramp-patience steps in a row have p99 > --p99-bound-us, or a step loses\n"
    "           messages or delivers < 80% of its rate; reports the highest rate that held\n"
    "  noisy    bystanders (pair traffic: --pairs, --rate) measured for ack and delivery\n"
    "           latency while one attacker user, in a group of --members, hammers the group\n"
    "           (texts, obeying rate_limited), syncs its full inbox (--attacker-inbox entries of\n"
    "           --attacker-inbox-size bytes) and opens up to --attacker-sessions sessions; one\n"
    "           step of --duration s per --phases entry (off = the baseline); needs\n"
    "           2 x pairs + members + 4 users\n"
    "Users <prefix><offset>.. must exist (parley bulk-users). Exit status: 0 when every\n"
    "connection opened and stayed open and nothing was lost or left unanswered (noisy: the\n"
    "bystanders'; nothing the attacker meets counts), 1 otherwise, 2 on bad flags.";

/* Parses --phases: comma-separated phases, each "off", "all" or activities
 * joined by '+' (group, sync, sessions). Returns 0 or -1 (message printed). */
static int bench_parse_phases(bench_cfg *cfg, const char *prog)
{
    char *copy = strdup(cfg->phases), *save = NULL;
    cfg->nphases = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (cfg->nphases == BENCH_MAX_PHASES) {
            fprintf(stderr, "%s: --phases: at most %d phases\n", prog, BENCH_MAX_PHASES);
            free(copy);
            return -1;
        }
        int mask = 0;
        snprintf(cfg->phase_name[cfg->nphases], sizeof cfg->phase_name[0], "%s", t);
        char *save2 = NULL;
        for (char *a = strtok_r(t, "+", &save2); a; a = strtok_r(NULL, "+", &save2)) {
            if (!strcmp(a, "off"))
                mask |= 0;
            else if (!strcmp(a, "group"))
                mask |= ATK_GROUP;
            else if (!strcmp(a, "sync"))
                mask |= ATK_SYNC;
            else if (!strcmp(a, "sessions"))
                mask |= ATK_SESSIONS;
            else if (!strcmp(a, "all"))
                mask |= ATK_GROUP | ATK_SYNC | ATK_SESSIONS;
            else {
                fprintf(stderr,
                        "%s: --phases: unknown '%s' (off, group, sync, sessions, all, "
                        "joined by + and separated by commas)\n",
                        prog, a);
                free(copy);
                return -1;
            }
        }
        cfg->phase_mask[cfg->nphases++] = mask;
    }
    free(copy);
    if (cfg->nphases == 0) {
        fprintf(stderr, "%s: --phases names no phase\n", prog);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *prog = "parley-bench";
    bench_cfg cfg = {
        .gateways = "",
        .pids = "",
        .cpu_pids = "",
        .secret = TOKEN_DEV_SECRET,
        .prefix = "bench",
        .json = "",
        .label = "",
        .connections = 1000,
        .connect_rate = 0,
        .inflight = 512,
        .sources = 8,
        .procs = 1,
        .hold_s = 0,
        .pairs = 1000,
        .rate = 5000,
        .duration_s = 10,
        .size = 100,
        .members = 1000,
        .drain_ms = 10000,
        .tick_us = 500,
        .connect_timeout_s = 20,
        .rate_start = 5000,
        .rate_step = 5000,
        .rate_max = 200000,
        .step_s = 5,
        .p99_bound_us = 10000,
        .progress = 1,
        .ramp_patience = 2,
        .phases = "off,group,sync,sessions,all",
        .ops = "text",
        .atk_window = 32,
        .atk_sessions = 500,
        .atk_inbox = 1000,
        .atk_inbox_size = 60000,
        .settle_ms = 1000,
    };
    const config_opt opts[] = {
        {"gateways", "PARLEY_BENCH_GATEWAYS", CONFIG_STR, &cfg.gateways, 0, 0,
         "gateways host:port,... (required)"},
        {"pids", "PARLEY_BENCH_GATEWAY_PIDS", CONFIG_STR, &cfg.pids, 0, 0,
         "gateway pids, same order, for RSS"},
        {"secret", "PARLEY_SECRET", CONFIG_STR, &cfg.secret, 0, 0, "token secret of the gateways"},
        {"prefix", "PARLEY_BENCH_PREFIX", CONFIG_STR, &cfg.prefix, 0, 0, "user name prefix"},
        {"user-offset", "PARLEY_BENCH_USER_OFFSET", CONFIG_INT, &cfg.user_offset, 0, 100000000,
         "first user number"},
        {"procs", "PARLEY_BENCH_PROCS", CONFIG_INT, &cfg.procs, 1, BENCH_MAX_PROCS,
         "worker processes (each <= ~19.9k sockets)"},
        {"sources", "PARLEY_BENCH_SOURCES", CONFIG_INT, &cfg.sources, 0, 250,
         "source addresses 127.0.0.2.. (0: kernel's choice)"},
        {"connections", "PARLEY_BENCH_CONNECTIONS", CONFIG_INT, &cfg.connections, 1, 10000000,
         "connect: connections"},
        {"connect-rate", "PARLEY_BENCH_CONNECT_RATE", CONFIG_INT, &cfg.connect_rate, 0, 10000000,
         "new connections/s in total (0: as fast as they open)"},
        {"inflight", "PARLEY_BENCH_INFLIGHT", CONFIG_INT, &cfg.inflight, 1, 1000000,
         "handshakes in flight per worker (connect() to hello)"},
        {"connect-timeout", "PARLEY_BENCH_CONNECT_TIMEOUT", CONFIG_INT, &cfg.connect_timeout_s, 1,
         3600, "s without progress before pending connections fail"},
        {"hold", "PARLEY_BENCH_HOLD", CONFIG_INT, &cfg.hold_s, 0, 86400,
         "connect: seconds to hold the connections"},
        {"pairs", "PARLEY_BENCH_PAIRS", CONFIG_INT, &cfg.pairs, 1, 1000000,
         "pair/ramp/noisy (default 50 there): sender/receiver pairs"},
        {"members", "PARLEY_BENCH_MEMBERS", CONFIG_INT, &cfg.members, 2, 100000,
         "fanout (default 1000, at most 19900)/noisy (default 5000): group members"},
        {"rate", "PARLEY_BENCH_RATE", CONFIG_INT, &cfg.rate, 1, 10000000,
         "pair/fanout/noisy (default 500 there): messages/s in total"},
        {"duration", "PARLEY_BENCH_DURATION", CONFIG_INT, &cfg.duration_s, 1, 86400,
         "pair/fanout: seconds of sending; noisy: per phase"},
        {"size", "PARLEY_BENCH_SIZE", CONFIG_INT, &cfg.size, 1, 60000, "message data bytes"},
        {"drain-ms", "PARLEY_BENCH_DRAIN_MS", CONFIG_INT, &cfg.drain_ms, 0, 600000,
         "longest wait for answers after sending"},
        {"tick-us", "PARLEY_BENCH_TICK_US", CONFIG_INT, &cfg.tick_us, 50, 1000000,
         "send schedule granularity"},
        {"rate-start", "PARLEY_BENCH_RATE_START", CONFIG_INT, &cfg.rate_start, 1, 10000000,
         "ramp: first rate"},
        {"rate-step", "PARLEY_BENCH_RATE_STEP", CONFIG_INT, &cfg.rate_step, 1, 10000000,
         "ramp: rate increment"},
        {"rate-max", "PARLEY_BENCH_RATE_MAX", CONFIG_INT, &cfg.rate_max, 1, 10000000,
         "ramp: last rate tried"},
        {"step-seconds", "PARLEY_BENCH_STEP_SECONDS", CONFIG_INT, &cfg.step_s, 1, 3600,
         "ramp: seconds per step"},
        {"ramp-patience", "PARLEY_BENCH_RAMP_PATIENCE", CONFIG_INT, &cfg.ramp_patience, 1, 100,
         "ramp: consecutive failed steps that end it"},
        {"p99-bound-us", "PARLEY_BENCH_P99_BOUND_US", CONFIG_INT, &cfg.p99_bound_us, 1, 100000000,
         "ramp: p99 bound (marks pair/fanout held; noisy: 50000, ack and delivery)"},
        {"cpu-pids", "PARLEY_BENCH_CPU_PIDS", CONFIG_STR, &cfg.cpu_pids, 0, 0,
         "name=pid,...: CPU time per message of these processes"},
        {"json", "PARLEY_BENCH_JSON", CONFIG_STR, &cfg.json, 0, 0,
         "write the results as JSON here"},
        {"label", "PARLEY_BENCH_LABEL", CONFIG_STR, &cfg.label, 0, 0,
         "free text stored with the results"},
        {"progress", "PARLEY_BENCH_PROGRESS", CONFIG_INT, &cfg.progress, 0, 1,
         "progress line on stderr"},
        {"ops", "PARLEY_BENCH_OPS", CONFIG_STR, &cfg.ops, 0, 0,
         "pair/fanout: steps, text first then edit, react, delete (each --rate, --duration)"},
        {"phases", "PARLEY_BENCH_PHASES", CONFIG_STR, &cfg.phases, 0, 0,
         "noisy: steps, each off|all|group+sync+sessions"},
        {"attacker-window", "PARLEY_BENCH_ATTACKER_WINDOW", CONFIG_INT, &cfg.atk_window, 1, 100000,
         "noisy: the attacker's unanswered group texts"},
        {"attacker-sessions", "PARLEY_BENCH_ATTACKER_SESSIONS", CONFIG_INT, &cfg.atk_sessions, 0,
         19000, "noisy: most extra sessions the attacker opens"},
        {"attacker-inbox", "PARLEY_BENCH_ATTACKER_INBOX", CONFIG_INT, &cfg.atk_inbox, 0, 1000000,
         "noisy: big entries put in the attacker's inbox"},
        {"attacker-inbox-size", "PARLEY_BENCH_ATTACKER_INBOX_SIZE", CONFIG_INT, &cfg.atk_inbox_size,
         1, 65000, "noisy: bytes of data of each of them"},
        {"settle-ms", "PARLEY_BENCH_SETTLE_MS", CONFIG_INT, &cfg.settle_ms, 0, 600000,
         "noisy: pause before each step"},
    };
    const int nopts = (int)(sizeof opts / sizeof opts[0]);
    int argi = 0;

    if (argc < 2 || argv[1][0] == '-') {
        if (config_parse(prog, bench_usage, opts, nopts, argc, argv, &argi) < 0) return 2;
        fprintf(stderr, "%s: a MODE is required (connect, pair, fanout, ramp, noisy); see --help\n",
                prog);
        return 2;
    }
    cfg.mode_name = argv[1];
    if (!strcmp(argv[1], "connect"))
        cfg.mode = MODE_CONNECT;
    else if (!strcmp(argv[1], "pair") || !strcmp(argv[1], "1:1"))
        cfg.mode = MODE_PAIR, cfg.mode_name = "pair";
    else if (!strcmp(argv[1], "fanout"))
        cfg.mode = MODE_FANOUT;
    else if (!strcmp(argv[1], "ramp"))
        cfg.mode = MODE_RAMP;
    else if (!strcmp(argv[1], "noisy")) {
        cfg.mode = MODE_NOISY;
        /* its own defaults (flags and environment still override them) */
        cfg.members = 5000;
        cfg.pairs = 50;
        cfg.rate = 500;
        cfg.p99_bound_us = 50000;
    } else {
        fprintf(stderr, "%s: unknown mode '%s' (connect, pair, fanout, ramp, noisy)\n", prog,
                argv[1]);
        return 2;
    }
    if (config_parse(prog, bench_usage, opts, nopts, argc - 1, argv + 1, &argi) < 0) return 2;
    if (argi < argc - 1) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[1 + argi]);
        return 2;
    }
    if (bench_parse_gateways(&cfg, prog) < 0) return 2;
    bench_parse_cpu_pids(&cfg);
    if (cfg.mode == MODE_NOISY && bench_parse_phases(&cfg, prog) < 0) return 2;
    if (bench_parse_ops(&cfg, prog) < 0) return 2;
    if (cfg.nops > 1 && cfg.mode != MODE_PAIR && cfg.mode != MODE_FANOUT) {
        fprintf(stderr, "%s: --ops is for modes pair and fanout\n", prog);
        return 2;
    }
    if (cfg.mode == MODE_FANOUT && cfg.members > 19900) {
        fprintf(stderr, "%s: fanout runs in one process: at most 19900 --members\n", prog);
        return 2;
    }
    if (cfg.mode == MODE_FANOUT && cfg.procs != 1) {
        fprintf(stderr,
                "%s: fanout runs in one process (--procs 1): the whole group in one place\n", prog);
        cfg.procs = 1;
    }
    long long units = cfg.mode == MODE_CONNECT  ? cfg.connections
                      : cfg.mode == MODE_FANOUT ? 1
                                                : cfg.pairs;
    if (cfg.procs > units) cfg.procs = units;
    cfg.nworkers = (int)cfg.procs + (cfg.mode == MODE_NOISY);
    cfg.atk_user = (uint32_t)(cfg.user_offset + 2 * cfg.pairs);
    if (cfg.mode == MODE_CONNECT && cfg.connections / cfg.procs > 19900) {
        fprintf(stderr,
                "%s: %lld connections in %lld process(es) is over ~19.9k sockets each; "
                "raise --procs\n",
                prog, cfg.connections, cfg.procs);
        return 2;
    }
    srand((unsigned)(bench_now_ns() ^ (uint64_t)getpid()));
    snprintf(cfg.nonce, sizeof cfg.nonce, "%06x", (unsigned)rand() & 0xffffff);
    snprintf(cfg.group, sizeof cfg.group, "#bench-%s", cfg.nonce);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    report *r = calloc(1, sizeof(*r));
    bench_shm *shm =
        mmap(NULL, sizeof(bench_shm), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (!r || shm == MAP_FAILED) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    r->cfg = &cfg;
    r->started_unix = (long long)time(NULL);
    bench_loadavg(r->load_start, sizeof r->load_start, NULL);
    for (int g = 0; g < cfg.npids && g < cfg.ngw; g++)
        r->rss_before_kb[g] = bench_rss_kb(cfg.gw_pid[g]);

    signal(SIGINT, bench_on_signal);
    signal(SIGTERM, bench_on_signal);
    signal(SIGPIPE, SIG_IGN);
    int tty = isatty(2);
    pid_t pids[BENCH_MAX_PROCS + 1];
    for (int w = 0; w < cfg.nworkers; w++) {
        pids[w] = fork();
        if (pids[w] < 0) {
            fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
            return 1;
        }
        if (pids[w] == 0 && w == cfg.procs) attacker_main(&cfg, shm, w);
        if (pids[w] == 0) worker_main(&cfg, shm, w);
    }

    /* connect phase */
    uint64_t t0 = bench_now_ns(), next = t0, prev[2] = {0, 0};
    double ccpu0[BENCH_MAX_GW * 2];
    for (int i = 0; i < cfg.ncpu; i++)
        ccpu0[i] = bench_cpu_s(cfg.cpu_pid[i]);
    int ok = 1;
    for (;;) {
        int ready = 1;
        for (int w = 0; w < cfg.nworkers; w++)
            ready &= shm->w[w].ready >= 2;
        if (ready) break;
        if (bench_interrupted || !bench_workers_alive(&cfg, pids, r->err, sizeof r->err)) {
            ok = 0;
            break;
        }
        if (cfg.progress && bench_now_ns() >= next) {
            bench_progress(&cfg, shm, "connect", t0, prev, tty);
            next += 1000000000ull;
        }
        bench_sleep_ms(10);
    }
    for (int i = 0; i < cfg.ncpu; i++)
        r->connect_cpu_s[i] = bench_cpu_s(cfg.cpu_pid[i]) - ccpu0[i];
    for (int w = 0; w < cfg.nworkers; w++)
        r->connect_gen_cpu_s += pids[w] > 0 ? bench_cpu_s(pids[w]) : 0;
    uint64_t tfirst = UINT64_MAX, tlast = 0;
    for (int w = 0; w < cfg.procs; w++) {
        bench_wstat *st = &shm->w[w];
        r->conns += st->conns;
        r->opened += st->opened;
        r->failed += st->failed;
        hist_merge(&r->connect, &st->connect_h);
        if (st->t_first_ns && st->t_first_ns < tfirst) tfirst = st->t_first_ns;
        if (st->t_last_open_ns > tlast) tlast = st->t_last_open_ns;
    }
    r->connect_s = tlast > tfirst ? (double)(tlast - tfirst) / 1e9 : 0;
    r->handshakes_per_s = r->connect_s > 0 ? (double)r->opened / r->connect_s : 0;
    if (cfg.progress) {
        bench_progress(&cfg, shm, "connect", t0, prev, tty);
        if (tty) fputc('\n', stderr);
    }

    if (ok && cfg.npids) {
        bench_sleep_ms(500); /* let the gateways finish their side (hello paced out) */
        for (int g = 0; g < cfg.npids && g < cfg.ngw; g++)
            r->rss_after_kb[g] = bench_rss_kb(cfg.gw_pid[g]);
    }
    if (ok && cfg.mode == MODE_CONNECT) {
        uint64_t th = bench_now_ns(), end = th + (uint64_t)cfg.hold_s * 1000000000ull;
        next = th;
        while (!bench_interrupted && bench_now_ns() < end) {
            if (cfg.progress && bench_now_ns() >= next) {
                bench_progress(&cfg, shm, "hold", th, prev, tty);
                next += 1000000000ull;
            }
            bench_sleep_ms(50);
        }
        if (cfg.progress && tty && cfg.hold_s) fputc('\n', stderr);
    } else if (ok && r->opened > 0 && (cfg.mode == MODE_PAIR || cfg.mode == MODE_FANOUT)) {
        r->steps = calloc((size_t)cfg.nops, sizeof(report_step));
        for (int i = 0; ok && i < cfg.nops; i++) { /* one step per --ops entry */
            if (bench_run_step(&cfg, shm, pids, i + 1, (double)cfg.rate, (double)cfg.duration_s,
                               &r->steps[i], r, tty) == 0)
                r->nsteps = i + 1;
            else
                ok = 0;
        }
    } else if (ok && r->opened > 0 && cfg.mode == MODE_NOISY) {
        /* one step per phase: the attacker prepares (refills its inbox) while
         * nothing is measured, the stack settles, then bystanders and attacker
         * run together */
        r->steps = calloc((size_t)cfg.nphases, sizeof(report_step));
        for (int i = 0; ok && i < cfg.nphases; i++) {
            shm->ctl.attack = cfg.phase_mask[i];
            __sync_synchronize();
            shm->ctl.prep = i + 1;
            while (shm->atk.prep_done < i + 1) {
                if (bench_interrupted || !bench_workers_alive(&cfg, pids, r->err, sizeof r->err)) {
                    ok = 0;
                    break;
                }
                bench_sleep_ms(20);
            }
            if (!ok) break;
            bench_sleep_ms((int)cfg.settle_ms);
            char load_now[64];
            double load1 = 0;
            bench_loadavg(load_now, sizeof load_now, &load1);
            if (bench_run_step(&cfg, shm, pids, i + 1, (double)cfg.rate, (double)cfg.duration_s,
                               &r->steps[i], r, tty) < 0) {
                ok = 0;
                break;
            }
            r->steps[i].load1_start = load1;
            r->nsteps = i + 1;
            if (cfg.progress) report_phase_line(r, i, stderr);
        }
    } else if (ok && r->opened > 0 && cfg.mode == MODE_RAMP) {
        int max = (int)((cfg.rate_max - cfg.rate_start) / cfg.rate_step) + 1;
        r->steps = calloc((size_t)max, sizeof(report_step));
        int fails = 0;
        for (int i = 0; i < max; i++) {
            double rate = (double)(cfg.rate_start + i * cfg.rate_step);
            if (bench_run_step(&cfg, shm, pids, i + 1, rate, (double)cfg.step_s, &r->steps[i], r,
                               tty) < 0) {
                ok = 0;
                break;
            }
            r->nsteps = i + 1;
            report_step_line(r, &r->steps[i], stderr);
            const report_step *st = &r->steps[i];
            if (st->held) {
                if (rate > r->best_rate) r->best_rate = rate;
                fails = 0;
                continue;
            }
            /* a p99 over the bound may be a noisy neighbour: try --ramp-patience
             * more steps; loss or a stack that no longer keeps up ends the ramp */
            if (++fails >= cfg.ramp_patience || st->lost || st->delivered_per_s < 0.8 * rate) break;
        }
    }
    for (int w = 0; w < cfg.procs; w++) {
        r->closed += shm->w[w].closed;
        for (int g = 0; g < cfg.ngw; g++)
            r->open_gw[g] += shm->w[w].open_gw[g];
    }
    /* stop the workers */
    shm->ctl.stop = 1;
    for (int w = 0; w < cfg.nworkers; w++) {
        if (pids[w] <= 0) continue;
        int status;
        if (waitpid(pids[w], &status, 0) == pids[w] &&
            !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            ok = 0;
            if (!r->err[0]) snprintf(r->err, sizeof r->err, "worker %d ended badly", w);
        }
    }
    for (int w = 0; w < cfg.procs && !r->err[0]; w++)
        if (shm->w[w].err[0]) snprintf(r->err, sizeof r->err, "%s", shm->w[w].err);
    if (bench_interrupted && !r->err[0]) snprintf(r->err, sizeof r->err, "interrupted");
    bench_loadavg(r->load_end, sizeof r->load_end, NULL);
    report_table(r, stdout);
    if (cfg.json[0] && report_json(r, cfg.json) < 0) {
        fprintf(stderr, "%s: cannot write %s: %s\n", prog, cfg.json, strerror(errno));
        ok = 0;
    }
    if (r->failed || r->opened < r->conns || r->closed) ok = 0; /* closed: by the server */
    for (int i = 0; i < r->nsteps; i++)
        if (r->steps[i].lost || (cfg.mode != MODE_RAMP && r->steps[i].unacked)) ok = 0;
    if (cfg.mode == MODE_RAMP && r->nsteps > 0 && r->steps[r->nsteps - 1].lost) ok = 0;
    free(r->steps);
    free(r);
    munmap(shm, sizeof(bench_shm));
    return ok ? 0 : 1;
}
