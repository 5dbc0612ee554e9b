/* report.c - the summary table and the JSON document of a run. */
#include "report.h"

#include <inttypes.h>
#include <string.h>

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

static void report_lat_line(FILE *out, const char *what, const hist *h)
{
    if (!h->count) {
        fprintf(out, "  %-22s (none)\n", what);
        return;
    }
    fprintf(out,
            "  %-22s p50 %8.3f  p90 %8.3f  p99 %8.3f  p99.9 %8.3f  max %8.3f ms  (n=%" PRIu64 ")\n",
            what, ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.9)), ms(hist_quantile(h, 0.99)),
            ms(hist_quantile(h, 0.999)), ms(h->max), h->count);
}

void report_step_line(const report *r, const report_step *s, FILE *out)
{
    (void)r;
    fprintf(
        out,
        "  %8.0f/s  delivered %9.0f/s  p50 %7.3f  p90 %7.3f  p99 %7.3f  p99.9 %7.3f  max %8.3f ms"
        "  lost %" PRIu64 "  unacked %" PRIu64 "  errors %" PRIu64 "  load %.2f  %s\n",
        s->rate, s->delivered_per_s, ms(hist_quantile(&s->lat, 0.5)),
        ms(hist_quantile(&s->lat, 0.9)), ms(hist_quantile(&s->lat, 0.99)),
        ms(hist_quantile(&s->lat, 0.999)), ms(s->lat.max), s->lost, s->unacked, s->errors, s->load1,
        s->held ? "held" : "FAILED");
}

/* The first phase with the attacker off in the run: the baseline. */
static const report_step *report_baseline(const report *r)
{
    for (int i = 0; i < r->nsteps; i++)
        if (r->cfg->phase_mask[i] == 0) return &r->steps[i];
    return NULL;
}

static void report_ratio(char *buf, size_t size, const hist *h, const hist *base)
{
    uint64_t b = base ? hist_quantile(base, 0.99) : 0;
    if (b && h->count)
        snprintf(buf, size, "x%.1f", (double)hist_quantile(h, 0.99) / (double)b);
    else
        snprintf(buf, size, "-");
}

void report_phase_line(const report *r, int i, FILE *out)
{
    const bench_cfg *c = r->cfg;
    const report_step *s = &r->steps[i], *base = report_baseline(r);
    const bench_astat *a = &s->atk;
    int m = c->phase_mask[i];
    char ra[32], rd[32];
    report_ratio(ra, sizeof ra, &s->ack, base ? &base->ack : NULL);
    report_ratio(rd, sizeof rd, &s->lat, base ? &base->lat : NULL);
    fprintf(out,
            "  %-16s ack p50 %7.3f p99 %8.3f max %8.3f (%s)  delivery p50 %7.3f p99 %8.3f max "
            "%8.3f ms (%s)  lost %" PRIu64 " unacked %" PRIu64 " errors %" PRIu64
            "  load %.2f-%.2f  %s\n",
            c->phase_name[i], ms(hist_quantile(&s->ack, 0.5)), ms(hist_quantile(&s->ack, 0.99)),
            ms(s->ack.max), ra, ms(hist_quantile(&s->lat, 0.5)), ms(hist_quantile(&s->lat, 0.99)),
            ms(s->lat.max), rd, s->lost, s->unacked, s->errors, s->load1_start, s->load1,
            s->held ? "target met" : "target MISSED");
    double el = s->duration_s > 0 ? s->duration_s : 1;
    if (!m) fprintf(out, "  %-16s attacker off\n", "");
    if (m & ATK_GROUP)
        fprintf(out,
                "  %-16s attacker group: %" PRIu64 " texts acked (%.1f/s), %" PRIu64
                " rate_limited, %" PRIu64 " unavailable (both sent again), %" PRIu64
                " refused, %" PRIu64 " unanswered; its ack p50 %.1f p99 %.1f ms; %" PRIu64
                " echoes to its sessions\n",
                "", a->g_acked, (double)a->g_acked / el, a->g_rate_limited, a->g_unavailable,
                a->g_errors, a->g_unanswered, ms(hist_quantile(&a->g_ack_h, 0.5)),
                ms(hist_quantile(&a->g_ack_h, 0.99)), a->copies);
    if (m & ATK_SYNC) {
        char unfinished[64] = "";
        if (a->s_open_ns)
            snprintf(unfinished, sizeof unfinished, "; one unfinished for %.0f ms at the end",
                     ms(a->s_open_ns));
        fprintf(out,
                "  %-16s attacker sync: %" PRIu64 " full syncs (%.1f/s, %.2f MB each), p50 %.1f "
                "p99 %.1f ms; %" PRIu64 " connections opened, %" PRIu64 " extra pages, %" PRIu64
                " not recovered, %" PRIu64 " cut, %" PRIu64 " refused 429, %" PRIu64 " failed%s\n",
                "", a->s_done, (double)a->s_done / el,
                a->s_done ? (double)a->s_bytes / (double)a->s_done / 1e6 : 0.0,
                ms(hist_quantile(&a->s_time_h, 0.5)), ms(hist_quantile(&a->s_time_h, 0.99)),
                a->s_hellos, a->s_pages, a->s_not_recovered, a->s_cut, a->s_refused, a->s_failed,
                unfinished);
    }
    if (m & ATK_SESSIONS)
        fprintf(out,
                "  %-16s attacker sessions: %" PRIu64
                " open at most (--attacker-sessions %lld), %" PRIu64 " opened, %" PRIu64
                " refused 429, %" PRIu64 " failed, %" PRIu64 " closed by the server\n",
                "", a->c_peak, c->atk_sessions, a->c_opened, a->c_refused, a->c_failed,
                a->c_closed);
}

void report_table(const report *r, FILE *out)
{
    const bench_cfg *c = r->cfg;
    fprintf(out, "\nparley-bench %s%s%s: %d gateway(s), %lld process(es), load average %s\n",
            c->mode_name, c->label && *c->label ? " - " : "", c->label ? c->label : "", c->ngw,
            c->procs, r->load_start);
    fprintf(out,
            "  connections            %" PRIu64 " opened of %" PRIu64 ", %" PRIu64
            " failed, %" PRIu64 " closed by the server\n",
            r->opened, r->conns, r->failed, r->closed);
    fprintf(out, "  handshakes             %.0f/s (%.2f s for all, TCP connect -> hello)\n",
            r->handshakes_per_s, r->connect_s);
    report_lat_line(out, "connect time", &r->connect);
    if (r->opened) {
        fprintf(out, "  CPU per connection     ");
        for (int i = 0; i < c->ncpu; i++)
            fprintf(out, "%s %.1f us  ", c->cpu_name[i],
                    r->connect_cpu_s[i] * 1e6 / (double)r->opened);
        fprintf(out, "generator %.1f us\n", r->connect_gen_cpu_s * 1e6 / (double)r->opened);
    }
    for (int g = 0; g < c->npids && g < c->ngw; g++) {
        long long d = r->rss_after_kb[g] - r->rss_before_kb[g];
        fprintf(out,
                "  gateway %-2d RSS         %lld KiB -> %lld KiB with %" PRIu64
                " connections: %.0f bytes per connection\n",
                g, r->rss_before_kb[g], r->rss_after_kb[g], r->open_gw[g],
                r->open_gw[g] ? (double)d * 1024.0 / (double)r->open_gw[g] : 0.0);
    }
    if (c->mode == MODE_NOISY) {
        const bench_astat *a = r->nsteps ? &r->steps[r->nsteps - 1].atk : NULL;
        fprintf(out,
                "  bystanders             %lld pairs, %lld msg/s in all, %lld s per phase, target "
                "p99 <= %.1f ms (ack and delivery)\n",
                c->pairs, c->rate, c->duration_s, (double)c->p99_bound_us / 1e3);
        fprintf(out,
                "  attacker               %s%u in %s (%lld members), window %lld texts of %lld "
                "bytes, up to %lld sessions, inbox %lld x %lld bytes\n",
                c->prefix, c->atk_user, c->group, c->members, c->atk_window, c->size,
                c->atk_sessions, c->atk_inbox, c->atk_inbox_size);
        if (a)
            fprintf(out,
                    "  attacker set-up        group of %" PRIu64 " in %.2f s; %" PRIu64
                    " inbox fill(s): %" PRIu64
                    " entries acked (%.1f MB), the last in %.2f s, %" PRIu64 " rate_limited\n",
                    a->group_members, a->group_setup_s, a->fills, a->fill_entries,
                    (double)a->fill_bytes / 1e6, a->fill_s, a->fill_rate_limited);
        fprintf(out, "  phases (ack = send -> ack, delivery = send -> receiver; (xN) = p99 / the "
                     "baseline's):\n");
        for (int i = 0; i < r->nsteps; i++)
            report_phase_line(r, i, out);
        if (a && a->err[0]) fprintf(out, "  attacker's first problem %s\n", a->err);
    } else if (c->mode == MODE_RAMP) {
        fprintf(out, "  ramp (bound p99 <= %.3f ms, nothing lost):\n",
                (double)c->p99_bound_us / 1e3);
        for (int i = 0; i < r->nsteps; i++)
            report_step_line(r, &r->steps[i], out);
        fprintf(out, "  highest rate held      %.0f msg/s\n", r->best_rate);
    }
    for (int n = 0; c->mode != MODE_NOISY && c->mode != MODE_RAMP && n < r->nsteps; n++) {
        const report_step *s = &r->steps[n];
        if (c->nops > 1) /* --ops: which frames this step sent */
            fprintf(out, "  step %d: %s%s\n", n + 1, bench_op_name(c->op[n]),
                    n ? " (one per text of step 1, by its author)" : "");
        fprintf(out, "  rate                   %.0f msg/s for %.1f s (%s)\n", s->rate,
                s->duration_s, c->mode == MODE_FANOUT ? "group messages" : "1:1 messages");
        fprintf(out,
                "  sent %" PRIu64 "  acked %" PRIu64 "  delivered %" PRIu64 " of %" PRIu64
                "  lost %" PRIu64 "  unacked %" PRIu64 "  errors %" PRIu64 " (rate_limited %" PRIu64
                ")  duplicates %" PRIu64 "\n",
                s->sent, s->acked, s->delivered, s->expected, s->lost, s->unacked, s->errors,
                s->rate_limited, s->dups);
        fprintf(out, "  delivered/s            %.0f\n", s->delivered_per_s);
        report_lat_line(out, "send -> delivery", &s->lat);
        if (c->mode == MODE_FANOUT) report_lat_line(out, "send -> last member", &s->last);
        report_lat_line(out, "send -> ack", &s->ack);
        report_lat_line(out, "generator lag", &s->lag);
        if (s->sent) {
            fprintf(out, "  CPU per message        ");
            for (int i = 0; i < c->ncpu; i++)
                fprintf(out, "%s %.1f us  ", c->cpu_name[i], s->cpu_s[i] * 1e6 / (double)s->sent);
            fprintf(out, "generator %.1f us\n", s->gen_cpu_s * 1e6 / (double)s->sent);
        }
    }
    if (r->err[0]) fprintf(out, "  first problem          %s\n", r->err);
    fprintf(out, "  load average at the end %s\n", r->load_end);
}

static void json_str(FILE *f, const char *s)
{
    fputc('"', f);
    for (; s && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            fprintf(f, "\\%c", ch);
        else if (ch < 0x20)
            fprintf(f, "\\u%04x", ch);
        else
            fputc(ch, f);
    }
    fputc('"', f);
}

static void json_hist(FILE *f, const char *name, const hist *h)
{
    fprintf(f,
            "\"%s\": {\"n\": %" PRIu64 ", \"mean_ms\": %.4f, \"p50_ms\": %.4f, \"p90_ms\": %.4f, "
            "\"p99_ms\": %.4f, \"p999_ms\": %.4f, \"max_ms\": %.4f}",
            name, h->count, hist_mean(h) / 1e6, ms(hist_quantile(h, 0.5)),
            ms(hist_quantile(h, 0.9)), ms(hist_quantile(h, 0.99)), ms(hist_quantile(h, 0.999)),
            ms(h->max));
}

static void json_step(FILE *f, const report *r, const report_step *s)
{
    fprintf(f,
            "{\"rate\": %.1f, \"duration_s\": %.3f, \"elapsed_s\": %.3f, \"sent\": %" PRIu64
            ", \"acked\": %" PRIu64 ", \"delivered\": %" PRIu64 ", \"expected\": %" PRIu64
            ", \"lost\": %" PRIu64 ", \"unacked\": %" PRIu64 ", \"errors\": %" PRIu64
            ", \"rate_limited\": %" PRIu64 ", \"duplicates\": %" PRIu64 ", \"late\": %" PRIu64
            ", \"delivered_per_s\": %.1f, \"load1\": %.2f, \"held\": %s, ",
            s->rate, s->duration_s, s->elapsed_s, s->sent, s->acked, s->delivered, s->expected,
            s->lost, s->unacked, s->errors, s->rate_limited, s->dups, s->late, s->delivered_per_s,
            s->load1, s->held ? "true" : "false");
    if (r->cfg->mode == MODE_PAIR || r->cfg->mode == MODE_FANOUT) /* what the step sent */
        fprintf(f, "\"op\": \"%s\", ",
                bench_op_name(r->cfg->op[r->cfg->nops > 1 ? (int)(s - r->steps) : 0]));
    json_hist(f, "latency", &s->lat);
    fputs(", ", f);
    json_hist(f, "last_member", &s->last);
    fputs(", ", f);
    json_hist(f, "ack", &s->ack);
    fputs(", ", f);
    json_hist(f, "generator_lag", &s->lag);
    fprintf(f, ", \"cpu_s\": {\"generator\": %.3f", s->gen_cpu_s);
    for (int i = 0; i < r->cfg->ncpu; i++)
        fprintf(f, ", \"%s\": %.3f", r->cfg->cpu_name[i], s->cpu_s[i]);
    fputs("}", f);
    if (r->cfg->mode == MODE_NOISY) {
        int i = (int)(s - r->steps), m = r->cfg->phase_mask[i];
        const bench_astat *a = &s->atk;
        fputs(",\n    \"phase\": ", f);
        json_str(f, r->cfg->phase_name[i]);
        fprintf(f,
                ", \"attack\": {\"group\": %s, \"sync\": %s, \"sessions\": %s}, \"load1_start\": "
                "%.2f,\n    \"attacker\": {\"group\": {\"sent\": %" PRIu64 ", \"acked\": %" PRIu64
                ", \"rate_limited\": %" PRIu64 ", \"unavailable\": %" PRIu64
                ", \"errors\": %" PRIu64 ", \"unanswered\": %" PRIu64 ", \"echoes\": %" PRIu64 ", ",
                m & ATK_GROUP ? "true" : "false", m & ATK_SYNC ? "true" : "false",
                m & ATK_SESSIONS ? "true" : "false", s->load1_start, a->g_sent, a->g_acked,
                a->g_rate_limited, a->g_unavailable, a->g_errors, a->g_unanswered, a->copies);
        json_hist(f, "ack", &a->g_ack_h);
        fprintf(f,
                "}, \"sync\": {\"connections\": %" PRIu64 ", \"done\": %" PRIu64
                ", \"entries\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"extra_pages\": %" PRIu64
                ", \"not_recovered\": %" PRIu64 ", \"cut\": %" PRIu64 ", \"refused_429\": %" PRIu64
                ", \"failed\": %" PRIu64 ", \"unfinished_ms\": %.3f, ",
                a->s_hellos, a->s_done, a->s_entries, a->s_bytes, a->s_pages, a->s_not_recovered,
                a->s_cut, a->s_refused, a->s_failed, ms(a->s_open_ns));
        json_hist(f, "time", &a->s_time_h);
        fprintf(f,
                "}, \"sessions\": {\"attempted\": %" PRIu64 ", \"opened\": %" PRIu64
                ", \"peak_open\": %" PRIu64 ", \"refused_429\": %" PRIu64 ", \"failed\": %" PRIu64
                ", \"closed_by_server\": %" PRIu64 "}}",
                a->c_attempted, a->c_opened, a->c_peak, a->c_refused, a->c_failed, a->c_closed);
    }
    fputs("}", f);
}

int report_json(const report *r, const char *path)
{
    const bench_cfg *c = r->cfg;
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, "{\"tool\": \"parley-bench\", \"mode\": ");
    json_str(f, c->mode_name);
    fprintf(f, ", \"label\": ");
    json_str(f, c->label ? c->label : "");
    fprintf(f, ", \"started_unix\": %lld, \"load_start\": ", r->started_unix);
    json_str(f, r->load_start);
    fprintf(f, ", \"load_end\": ");
    json_str(f, r->load_end);
    fprintf(f,
            ",\n \"config\": {\"gateways\": %d, \"procs\": %lld, \"sources\": %lld, "
            "\"connections\": %lld, \"connect_rate\": %lld, \"pairs\": %lld, \"members\": %lld, "
            "\"rate\": %lld, \"duration_s\": %lld, \"size\": %lld, \"tick_us\": %lld, "
            "\"p99_bound_ms\": %.3f},\n",
            c->ngw, c->procs, c->sources, c->connections, c->connect_rate, c->pairs, c->members,
            c->rate, c->duration_s, c->size, c->tick_us, (double)c->p99_bound_us / 1e3);
    fprintf(f,
            " \"connect\": {\"connections\": %" PRIu64 ", \"opened\": %" PRIu64
            ", \"failed\": %" PRIu64 ", \"closed\": %" PRIu64
            ", \"seconds\": %.3f, \"handshakes_per_s\": %.1f, ",
            r->conns, r->opened, r->failed, r->closed, r->connect_s, r->handshakes_per_s);
    json_hist(f, "connect_time", &r->connect);
    fprintf(f, ", \"cpu_s\": {\"generator\": %.3f", r->connect_gen_cpu_s);
    for (int i = 0; i < c->ncpu; i++)
        fprintf(f, ", \"%s\": %.3f", c->cpu_name[i], r->connect_cpu_s[i]);
    fputs("}", f);
    fputs(", \"gateways\": [", f);
    for (int g = 0; g < c->npids && g < c->ngw; g++) {
        long long d = r->rss_after_kb[g] - r->rss_before_kb[g];
        fprintf(f,
                "%s{\"pid\": %d, \"rss_before_kib\": %lld, \"rss_after_kib\": %lld, "
                "\"connections\": %" PRIu64 ", \"bytes_per_connection\": %.1f}",
                g ? ", " : "", (int)c->gw_pid[g], r->rss_before_kb[g], r->rss_after_kb[g],
                r->open_gw[g], r->open_gw[g] ? (double)d * 1024.0 / (double)r->open_gw[g] : 0.0);
    }
    fputs("]},\n", f);
    if (c->mode == MODE_NOISY) {
        const bench_astat *a = r->nsteps ? &r->steps[r->nsteps - 1].atk : NULL;
        fputs(" \"noisy\": {\"phases\": ", f);
        json_str(f, c->phases);
        fprintf(f, ", \"attacker\": \"%s%u\", \"group\": ", c->prefix, c->atk_user);
        json_str(f, c->group);
        fprintf(f,
                ", \"window\": %lld, \"sessions\": %lld, \"inbox_entries\": %lld, "
                "\"inbox_entry_bytes\": %lld, \"settle_ms\": %lld",
                c->atk_window, c->atk_sessions, c->atk_inbox, c->atk_inbox_size, c->settle_ms);
        if (a)
            fprintf(f,
                    ", \"group_members\": %" PRIu64 ", \"group_setup_s\": %.3f, \"fills\": %" PRIu64
                    ", \"fill_entries\": %" PRIu64 ", \"fill_bytes\": %" PRIu64
                    ", \"fill_rate_limited\": %" PRIu64 ", \"last_fill_s\": %.3f",
                    a->group_members, a->group_setup_s, a->fills, a->fill_entries, a->fill_bytes,
                    a->fill_rate_limited, a->fill_s);
        fputs(", \"error\": ", f);
        json_str(f, a ? a->err : "");
        fputs("},\n", f);
    }
    fputs(" \"steps\": [", f);
    for (int i = 0; i < r->nsteps; i++) {
        fputs(i ? ",\n   " : "\n   ", f);
        json_step(f, r, &r->steps[i]);
    }
    fprintf(f, "],\n \"highest_rate_held\": %.1f, \"error\": ", r->best_rate);
    json_str(f, r->err);
    fputs("}\n", f);
    return fclose(f) == 0 ? 0 : -1;
}
