/*
 * iocx-bench merge (see merge.h).  Each input is an HdrHistogram interval
 * log, or a --json report (which carries each phase's histogram in the
 * same encoding, and its intervals' connects); its histograms are decoded
 * and added, per tag (phase: iocx.1, raw.1, ...), into one histogram of
 * the bench's layout.  That is exact: the same buckets, the counts added,
 * so the merged percentiles are those of one histogram fed every sample.
 *
 * Rates: the processes ran side by side, so a rate is taken over the
 * wall time they all ran, the overlap [latest first start, earliest last
 * end] of the files' spans (absolute times: BaseTime or StartTime plus
 * each interval's start), counting the intervals whose midpoint lies in
 * it.  Without an overlap there is no combined rate (null).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hdrlog.h"
#include "json_in.h"
#include "merge.h"
#include "report.h"

#define MAX_TAGS 64
#define MAX_TAG_TEXT 64

/* One interval line, once decoded. */
struct interval {
	unsigned tag;
	double start, end;		/* absolute: seconds since the epoch */
	uint64_t count;
};

struct tag_sum {
	char name[MAX_TAG_TEXT];
	struct iocx_hist *h;
	uint64_t intervals;
	uint64_t in_overlap;		/* counts of intervals in overlap */
};

struct merge {
	struct tag_sum tags[MAX_TAGS];
	unsigned ntags;
	struct interval *iv;
	size_t niv, cap;
	struct iocx_hist *scratch;
	struct iocx_hist *all;
	double overlap_start, overlap_end;	/* start > end: none */
};

/* One line of f into *buf (grown as needed); false at the end. */
static bool read_line(FILE *f, char **buf, size_t *cap)
{
	size_t n = 0;
	int c;

	while ((c = fgetc(f)) != EOF) {
		if (n + 2 > *cap) {
			size_t want = *cap ? 2 * *cap : 4096;
			char *p = realloc(*buf, want);

			if (!p)
				return false;
			*buf = p;
			*cap = want;
		}
		if (c == '\n')
			break;
		(*buf)[n++] = (char)c;
	}
	if (c == EOF && n == 0)
		return false;
	(*buf)[n] = '\0';
	return true;
}

/* The index of tag name (added when new), or -1 when there are too many. */
static int tag_index(struct merge *m, const char *name, size_t len)
{
	struct tag_sum *t;

	if (len >= MAX_TAG_TEXT)
		len = MAX_TAG_TEXT - 1;
	for (unsigned i = 0; i < m->ntags; i++) {
		if (strlen(m->tags[i].name) == len &&
		    !strncmp(m->tags[i].name, name, len))
			return (int)i;
	}
	if (m->ntags == MAX_TAGS)
		return -1;
	t = &m->tags[m->ntags];
	memcpy(t->name, name, len);
	t->name[len] = '\0';
	t->h = malloc(sizeof(*t->h));
	if (!t->h)
		return -1;
	iocx__hist_init(t->h);
	return (int)m->ntags++;
}

static bool add_interval(struct merge *m, const struct interval *iv)
{
	if (m->niv == m->cap) {
		size_t want = m->cap ? 2 * m->cap : 256;
		struct interval *p = realloc(m->iv, want * sizeof(*p));

		if (!p)
			return false;
		m->iv = p;
		m->cap = want;
	}
	m->iv[m->niv++] = *iv;
	return true;
}

/*
 * One interval line: [Tag=T,]start,length,max,histogram.  False with a
 * reason in *why.
 */
static bool parse_interval(struct merge *m, char *line, double base,
			   struct interval *iv, const char **why)
{
	const char *tag = "", *hist;
	size_t tag_len = 0;
	double start, length;
	char *p = line, *end;
	int t;

	if (!strncmp(p, "Tag=", 4)) {
		tag = p + 4;
		p = strchr(p, ',');
		if (!p) {
			*why = "a Tag= without the interval";
			return false;
		}
		tag_len = (size_t)(p - tag);
		p++;
	}
	start = strtod(p, &end);
	if (end == p || *end != ',')
		goto bad;
	p = end + 1;
	length = strtod(p, &end);
	if (end == p || *end != ',' || !(length >= 0))
		goto bad;
	p = strchr(end + 1, ',');	/* the max: not needed */
	if (!p)
		goto bad;
	hist = p + 1;
	t = tag_index(m, tag, tag_len);
	if (t < 0) {
		*why = "too many tags, or out of memory";
		return false;
	}
	iocx__hist_init(m->scratch);
	if (hdrlog_decode_add(hist, m->scratch, why) != 0)
		return false;
	iocx__hist_merge(m->tags[t].h, m->scratch);
	iocx__hist_merge(m->all, m->scratch);
	m->tags[t].intervals++;
	iv->tag = (unsigned)t;
	iv->start = base + start;
	iv->end = base + start + length;
	iv->count = iocx__hist_count(m->scratch);
	return true;
bad:
	*why = "not an interval line (start,length,max,histogram)";
	return false;
}

static bool close_span(struct merge *m, const char *path, size_t n0,
		       bool first);
static bool read_json(struct merge *m, const char *path, FILE *f,
		      bool first);

/* The first character of f that is not white space (EOF if none); f is
 * then rewound. */
static int first_char(FILE *f)
{
	int c;

	do
		c = fgetc(f);
	while (c == ' ' || c == '\t' || c == '\n' || c == '\r');
	rewind(f);
	return c;
}

/* Read one log; false after a message. */
static bool read_log(struct merge *m, const char *path, bool first)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0, lineno = 0, n0 = m->niv;
	double start_time = 0, base_time = 0;
	bool have_base = false, ok = true;

	if (!f) {
		fprintf(stderr, "iocx-bench merge: cannot open %s\n", path);
		return false;
	}
	/* A --json report is an object; a log starts with its header. */
	if (first_char(f) == '{') {
		ok = read_json(m, path, f, first);
		fclose(f);
		return ok;
	}
	while (ok && read_line(f, &line, &cap)) {
		struct interval iv;
		const char *why;

		lineno++;
		if (!strncmp(line, "#[StartTime: ", 13)) {
			start_time = strtod(line + 13, NULL);
		} else if (!strncmp(line, "#[BaseTime: ", 12)) {
			base_time = strtod(line + 12, NULL);
			have_base = true;
		} else if (line[0] == '#' || line[0] == '"' ||
			   line[0] == '\0') {
			continue;	/* comments, the legend */
		} else if (!strncmp(line, "Tag=" HDRLOG_RESOLVE_TAG,
				    strlen("Tag=" HDRLOG_RESOLVE_TAG))) {
			continue;	/* resolution times, not latencies */
		} else if (!parse_interval(m, line, have_base ? base_time
							      : start_time,
					   &iv, &why) ||
			   !add_interval(m, &iv)) {
			fprintf(stderr, "iocx-bench merge: %s:%zu: %s\n", path,
				lineno, why);
			ok = false;
		}
	}
	free(line);
	if (ferror(f)) {
		fprintf(stderr, "iocx-bench merge: cannot read %s\n", path);
		ok = false;
	}
	fclose(f);
	return ok && close_span(m, path, n0, first);
}

/*
 * The intervals of one file (from n0 on) are all read: narrow the
 * overlap to their span.  False after a message when there were none.
 */
static bool close_span(struct merge *m, const char *path, size_t n0,
		       bool first)
{
	double span_start, span_end;

	if (m->niv == n0) {
		fprintf(stderr, "iocx-bench merge: %s: no intervals\n", path);
		return false;
	}
	span_start = m->iv[n0].start;
	span_end = m->iv[n0].end;
	for (size_t i = n0; i < m->niv; i++) {
		if (m->iv[i].start < span_start)
			span_start = m->iv[i].start;
		if (m->iv[i].end > span_end)
			span_end = m->iv[i].end;
	}
	if (first || span_start > m->overlap_start)
		m->overlap_start = span_start;
	if (first || span_end < m->overlap_end)
		m->overlap_end = span_end;
	return true;
}

/* A phase's "intervals": [[start_s, length_s, connects], ...]. */
static bool json_intervals(struct json_in *j, struct merge *m, unsigned t,
			   double base)
{
	bool more = true, first = true;

	while (json_in_array_next(j, &first)) {
		bool f2 = true;
		double v[3];
		int n = 0;

		while (json_in_array_next(j, &f2)) {
			if (n == 3 || !json_in_number(j, &v[n++]))
				return false;
		}
		if (j->why || n != 3 || v[1] < 0 || v[2] < 0)
			goto bad;
		more = add_interval(m, &(struct interval){
					       .tag = t,
					       .start = base + v[0],
					       .end = base + v[0] + v[1],
					       .count = (uint64_t)v[2],
				       });
		if (!more) {
			j->why = "out of memory";
			return false;
		}
		m->tags[t].intervals++;
	}
	return !j->why;
bad:
	j->why = j->why ? j->why : "an interval is not [start_s, length_s, "
				   "connects]";
	return false;
}

/*
 * One element of a report's "phases": its tag from "phase" and "round",
 * its histogram from "latency_hdr" (added to the tag's and to all), its
 * intervals.
 */
static bool json_phase(struct json_in *j, struct merge *m, double base)
{
	char key[32], tag[MAX_TAG_TEXT], *name = NULL, *hdr = NULL;
	const char *why;
	double round = -1;
	bool first = true, ok = false;
	size_t n0 = m->niv;
	int t = -1;

	while (json_in_object_next(j, &first, key, sizeof(key))) {
		bool read;

		if (!strcmp(key, "phase")) {
			free(name);
			read = (name = json_in_string(j)) != NULL;
		} else if (!strcmp(key, "round")) {
			read = json_in_number(j, &round);
		} else if (!strcmp(key, "latency_hdr")) {
			free(hdr);
			read = (hdr = json_in_string(j)) != NULL;
		} else if (!strcmp(key, "intervals") && name && round >= 0) {
			snprintf(tag, sizeof(tag), "%s.%.0f", name, round);
			t = tag_index(m, tag, strlen(tag));
			read = t >= 0 && json_intervals(j, m, (unsigned)t, base);
			if (t < 0)
				j->why = "too many tags, or out of memory";
		} else {
			read = json_in_skip(j);
		}
		if (!read)
			goto out;
	}
	if (j->why)
		goto out;
	if (t < 0 || !hdr) {
		j->why = "a phase without phase, round, latency_hdr and "
			 "intervals (a report of iocx-bench 0.2 or later)";
		goto out;
	}
	iocx__hist_init(m->scratch);
	/* why is set on success too: only a failure may keep it. */
	if (hdrlog_decode_add(hdr, m->scratch, &why) != 0) {
		j->why = why;
		goto out;
	}
	iocx__hist_merge(m->tags[t].h, m->scratch);
	iocx__hist_merge(m->all, m->scratch);
	ok = true;
out:
	if (!ok)
		m->niv = n0;
	free(name);
	free(hdr);
	return ok;
}

/*
 * The text of a --json report: "base_time", then "phases".  False with
 * the reason in j->why.
 */
static bool json_report(struct json_in *j, struct merge *m)
{
	char key[32];
	double base = -1;
	bool first = true;

	while (json_in_object_next(j, &first, key, sizeof(key))) {
		bool read, f2 = true;

		if (!strcmp(key, "base_time")) {
			read = json_in_number(j, &base);
		} else if (!strcmp(key, "phases")) {
			if (base < 0) {
				j->why = "phases before base_time (a report "
					 "of iocx-bench 0.2 or later?)";
				return false;
			}
			while (json_in_array_next(j, &f2)) {
				if (!json_phase(j, m, base))
					return false;
			}
			read = !j->why;
		} else {
			read = json_in_skip(j);
		}
		if (!read)
			return false;
	}
	return !j->why && json_in_end(j);
}

/* Read one --json report; false after a message. */
static bool read_json(struct merge *m, const char *path, FILE *f, bool first)
{
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	struct json_in j;
	size_t n0 = m->niv;
	bool ok;

	do {
		if (len == cap) {
			char *p = realloc(text, cap = cap ? 2 * cap : 65536);

			if (!p) {
				free(text);
				fprintf(stderr, "iocx-bench merge: %s: out of "
					"memory\n", path);
				return false;
			}
			text = p;
		}
		n = fread(text + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	ok = !ferror(f);
	json_in_init(&j, text, len);
	if (ok && !json_report(&j, m)) {
		fprintf(stderr, "iocx-bench merge: %s: byte %zu: %s\n", path,
			(size_t)(j.p - text), j.why ? j.why : "not a report");
		ok = false;
	} else if (!ok) {
		fprintf(stderr, "iocx-bench merge: cannot read %s\n", path);
	}
	free(text);
	return ok && close_span(m, path, n0, first);
}

/* Connects per second over the overlap, or a negative value: none. */
static double overlap_rate(const struct merge *m, uint64_t count)
{
	double len = m->overlap_end - m->overlap_start;

	return len > 0 ? (double)count / len : -1;
}

static void json_rate(FILE *f, double rate)
{
	if (rate < 0)
		fprintf(f, "null");
	else
		fprintf(f, "%.1f", rate);
}

static void print_json(FILE *f, const struct merge *m, int nfiles,
		       char **files, uint64_t in_overlap)
{
	double len = m->overlap_end - m->overlap_start;

	fprintf(f, "{\n  \"tool\": \"iocx-bench merge\", \"inputs\": [");
	for (int i = 0; i < nfiles; i++) {
		fprintf(f, "%s", i ? ", " : "");
		report_json_str(f, files[i]);
	}
	fprintf(f, "],\n  \"connects\": %llu, \"overlap_s\": ",
		(unsigned long long)iocx__hist_count(m->all));
	if (len > 0)
		fprintf(f, "%.3f", len);
	else
		fprintf(f, "null");
	fprintf(f, ", \"connects_per_sec\": ");
	json_rate(f, overlap_rate(m, in_overlap));
	fprintf(f, ",\n  \"latency_us\": ");
	report_json_latency(f, m->all, false);
	fprintf(f, ",\n  \"phases\": [");
	for (unsigned i = 0; i < m->ntags; i++) {
		const struct tag_sum *t = &m->tags[i];

		fprintf(f, "%s\n    {\"tag\": ", i ? "," : "");
		report_json_str(f, t->name);
		fprintf(f, ", \"connects\": %llu, \"intervals\": %llu, "
			   "\"connects_per_sec\": ",
			(unsigned long long)iocx__hist_count(t->h),
			(unsigned long long)t->intervals);
		json_rate(f, overlap_rate(m, t->in_overlap));
		fprintf(f, ", \"latency_us\": ");
		report_json_latency(f, t->h, false);
		fprintf(f, "}");
	}
	fprintf(f, "\n  ]\n}\n");
}

static void print_table(FILE *f, const struct merge *m, int nfiles,
			uint64_t in_overlap)
{
	double len = m->overlap_end - m->overlap_start;

	fprintf(f, "iocx-bench merge: %d files; ", nfiles);
	if (len > 0)
		fprintf(f, "they ran together for %.3f s\n\n", len);
	else
		fprintf(f, "they never ran together: no combined rate\n\n");
	fprintf(f, "%-12s %10s %10s %9s %9s %9s %9s %9s\n", "phase",
		"connects", "connect/s", "p50 ms", "p90 ms", "p99 ms",
		"p99.9 ms", "max ms");
	for (unsigned i = 0; i <= m->ntags; i++) {
		const struct iocx_hist *h = i < m->ntags ? m->tags[i].h
							 : m->all;
		double rate = overlap_rate(m, i < m->ntags
						      ? m->tags[i].in_overlap
						      : in_overlap);

		fprintf(f, "%-12s %10llu ",
			i < m->ntags ? m->tags[i].name : "all",
			(unsigned long long)iocx__hist_count(h));
		if (rate < 0)
			fprintf(f, "%10s", "-");
		else
			fprintf(f, "%10.1f", rate);
		report_table_latency(f, h);
		fprintf(f, "\n");
	}
}

/* See merge.h. */
int bench_merge(int argc, char **argv)
{
	struct merge m = { .overlap_start = 0 };
	bool json = false;
	int first = 1, rc = 1;
	uint64_t in_overlap = 0;

	if (argc > 1 && !strcmp(argv[1], "--json")) {
		json = true;
		first = 2;
	}
	if (first >= argc) {
		fprintf(stderr, "iocx-bench merge: want --hdr-log or --json files: "
			"iocx-bench merge [--json] FILE...\n");
		return 2;
	}
	m.scratch = malloc(sizeof(*m.scratch));
	m.all = malloc(sizeof(*m.all));
	if (!m.scratch || !m.all) {
		fprintf(stderr, "iocx-bench merge: out of memory\n");
		goto out;
	}
	iocx__hist_init(m.all);
	for (int i = first; i < argc; i++) {
		if (!read_log(&m, argv[i], i == first))
			goto out;
	}
	for (size_t i = 0; i < m.niv; i++) {
		double mid = (m.iv[i].start + m.iv[i].end) / 2;

		if (mid < m.overlap_start || mid > m.overlap_end)
			continue;
		m.tags[m.iv[i].tag].in_overlap += m.iv[i].count;
		in_overlap += m.iv[i].count;
	}
	if (json)
		print_json(stdout, &m, argc - first, argv + first, in_overlap);
	else
		print_table(stdout, &m, argc - first, in_overlap);
	rc = 0;
out:
	for (unsigned i = 0; i < m.ntags; i++)
		free(m.tags[i].h);
	free(m.iv);
	free(m.scratch);
	free(m.all);
	return rc;
}
