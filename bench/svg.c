/*
 * iocx-bench's SVG picture (see svg.h).  Coordinates are computed here:
 * the spectrum's x is log10(1 / (1 - p)), so each "nine" of the
 * percentile takes the same width, up to the nines the phase's count can
 * resolve (at most 5: 99.999 %); y is linear in milliseconds.
 */
#include <math.h>
#include <string.h>

#include "svg.h"

#define WIDTH 1000
#define HEIGHT 440
#define PLOT_W 400		/* each chart */
#define PLOT_H 300
#define LEFT1 70		/* x of the spectrum's plot area */
#define LEFT2 570		/* x of the rate's plot area */
#define TOP 50
#define MAX_NINES 5.0
#define STEP 0.05		/* spectrum points, in nines */

/* Colours of the phases in run order (then again). */
static const char *const colours[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
};
#define N_COLOURS (sizeof(colours) / sizeof(*colours))

/* Text that goes into SVG: <, > and & escaped, quotes for attributes. */
static void xml_text(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '&':
			fputs("&amp;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		default:
			if ((unsigned char)*s >= 0x20)
				fputc(*s, f);
		}
	}
}

/* The nines a histogram of n values resolves: log10(n), in [1, 5]. */
static double nines_of(uint64_t n)
{
	double x = n > 1 ? log10((double)n) : 1;

	return x < 1 ? 1 : x > MAX_NINES ? MAX_NINES : x;
}

static double pct_at(double nines)
{
	return 100.0 * (1.0 - pow(10.0, -nines));
}

/* A "nice" axis top at or above v (1, 2, 5 times a power of ten). */
static double nice_top(double v)
{
	double p;

	if (!(v > 0))
		return 1;
	p = pow(10.0, floor(log10(v)));
	return v <= p ? p : v <= 2 * p ? 2 * p : v <= 5 * p ? 5 * p : 10 * p;
}

static void axes(FILE *f, int left, const char *title, const char *xlabel,
		 const char *ylabel, double ytop)
{
	fprintf(f, "  <text x=\"%d\" y=\"%d\" font-size=\"15\" "
		   "font-weight=\"bold\">%s</text>\n", left, TOP - 20, title);
	fprintf(f, "  <rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
		   "fill=\"none\" stroke=\"#444\"/>\n", left, TOP, PLOT_W,
		PLOT_H);
	fprintf(f, "  <text x=\"%d\" y=\"%d\" font-size=\"12\" "
		   "text-anchor=\"middle\">%s</text>\n", left + PLOT_W / 2,
		TOP + PLOT_H + 38, xlabel);
	fprintf(f, "  <text x=\"%d\" y=\"%d\" font-size=\"12\" "
		   "text-anchor=\"middle\" transform=\"rotate(-90 %d %d)\">"
		   "%s</text>\n", left - 50, TOP + PLOT_H / 2, left - 50,
		TOP + PLOT_H / 2, ylabel);
	for (int i = 0; i <= 4; i++) {
		double y = TOP + PLOT_H - PLOT_H * i / 4.0;

		fprintf(f, "  <line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" "
			   "y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y,
			left + PLOT_W, y);
		fprintf(f, "  <text x=\"%d\" y=\"%.1f\" font-size=\"11\" "
			   "text-anchor=\"end\">%g</text>\n", left - 4, y + 4,
			ytop * i / 4);
	}
}

static void legend(FILE *f, const struct run_report *r)
{
	for (unsigned i = 0; i < r->nresults; i++) {
		int x = LEFT1 + 130 * (int)i;

		fprintf(f, "  <rect x=\"%d\" y=\"%d\" width=\"14\" "
			   "height=\"4\" fill=\"%s\"/>\n", x, HEIGHT - 22,
			colours[i % N_COLOURS]);
		fprintf(f, "  <text x=\"%d\" y=\"%d\" font-size=\"12\">%s "
			   "#%u</text>\n", x + 20, HEIGHT - 16,
			r->results[i].name, r->results[i].round);
	}
}

/* Widen the spectrum's axes to take h (NULL: nothing). */
static void fit(const struct iocx_hist *h, double *xmax, double *top_ms)
{
	double n, v;

	if (!h)
		return;
	n = nines_of(iocx__hist_count(h));
	v = iocx__hist_percentile(h, pct_at(n)) / 1e6;
	if (n > *xmax)
		*xmax = n;
	if (v > *top_ms)
		*top_ms = v;
}

/* One phase's curve of h in the spectrum; dashed for resolution. */
static void curve(FILE *f, const struct phase_result *p,
		  const struct iocx_hist *h, const char *cls,
		  const char *colour, bool dashed, double xmax, double top_ms)
{
	double n = nines_of(iocx__hist_count(h));

	fprintf(f, "    <polyline class=\"%s\" data-phase=\"", cls);
	xml_text(f, p->name);
	fprintf(f, " #%u\" fill=\"none\" stroke=\"%s\" "
		   "stroke-width=\"2\"%s points=\"", p->round, colour,
		dashed ? " stroke-dasharray=\"6,4\"" : "");
	for (double x = 0; x <= n + 1e-9; x += STEP) {
		double v = iocx__hist_percentile(h, pct_at(x));

		fprintf(f, "%s%.1f,%.1f", x > 0 ? " " : "",
			LEFT1 + PLOT_W * x / xmax,
			TOP + PLOT_H - PLOT_H * (v / 1e6) / top_ms);
	}
	fprintf(f, "\"/>\n");
}

/*
 * The percentile spectrum: one polyline per phase; by name, a dashed
 * one per phase for its resolution times (warm-up included, as the
 * table's resolution line).
 */
static void spectrum(FILE *f, const struct run_report *r)
{
	double top_ms = 0, xmax = 1;
	bool by_name = false;

	for (unsigned i = 0; i < r->nresults; i++) {
		fit(r->results[i].hist, &xmax, &top_ms);
		fit(r->results[i].hist_resolve, &xmax, &top_ms);
		by_name |= r->results[i].hist_resolve != NULL;
	}
	top_ms = nice_top(top_ms);
	axes(f, LEFT1, "Latency by percentile", "percentile",
	     by_name ? "latency (ms); dashed: resolution"
		     : "connect latency (ms)", top_ms);
	for (int k = 0; k <= (int)xmax; k++) {
		double x = LEFT1 + PLOT_W * k / xmax;

		fprintf(f, "  <text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
			   "text-anchor=\"middle\">%g%%</text>\n", x,
			TOP + PLOT_H + 16, pct_at(k));
	}
	fprintf(f, "  <g id=\"spectrum\">\n");
	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];
		const char *colour = colours[i % N_COLOURS];

		curve(f, p, p->hist, "series", colour, false, xmax, top_ms);
		if (p->hist_resolve)
			curve(f, p, p->hist_resolve, "resolution", colour,
			      true, xmax, top_ms);
	}
	fprintf(f, "  </g>\n");
}

/* Connects per second over phase time: one polyline per phase. */
static void rate(FILE *f, const struct run_report *r,
		 const struct svg_rate *rates, size_t n)
{
	double top = 0, tmax = 1;

	for (size_t j = 0; j < n; j++) {
		if (rates[j].connects_per_sec > top)
			top = rates[j].connects_per_sec;
		if (rates[j].t_s > tmax)
			tmax = rates[j].t_s;
	}
	top = nice_top(top);
	tmax = nice_top(tmax);
	axes(f, LEFT2, "Connects per second", "seconds into the phase",
	     "connects/s", top);
	for (int k = 0; k <= 4; k++)
		fprintf(f, "  <text x=\"%.1f\" y=\"%d\" font-size=\"11\" "
			   "text-anchor=\"middle\">%g</text>\n",
			LEFT2 + PLOT_W * k / 4.0, TOP + PLOT_H + 16,
			tmax * k / 4);
	fprintf(f, "  <g id=\"rate\">\n");
	for (unsigned i = 0; i < r->nresults; i++) {
		const struct phase_result *p = &r->results[i];
		bool first = true;

		fprintf(f, "    <polyline class=\"series\" data-phase=\"");
		xml_text(f, p->name);
		fprintf(f, " #%u\" fill=\"none\" stroke=\"%s\" "
			   "stroke-width=\"2\" points=\"", p->round,
			colours[i % N_COLOURS]);
		for (size_t j = 0; j < n; j++) {
			if (strcmp(rates[j].name, p->name) ||
			    rates[j].round != p->round)
				continue;
			fprintf(f, "%s%.1f,%.1f", first ? "" : " ",
				LEFT2 + PLOT_W * rates[j].t_s / tmax,
				TOP + PLOT_H -
					PLOT_H * rates[j].connects_per_sec /
						top);
			first = false;
		}
		fprintf(f, "\"/>\n");
	}
	fprintf(f, "  </g>\n");
}

/* See svg.h. */
void report_svg(FILE *f, const struct run_report *r,
		const struct svg_rate *rates, size_t n)
{
	fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		   "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" "
		   "height=\"%d\" viewBox=\"0 0 %d %d\" "
		   "font-family=\"sans-serif\">\n", WIDTH, HEIGHT, WIDTH,
		HEIGHT);
	fprintf(f, "  <title>iocx-bench %s: ", IOCX_BENCH_VERSION);
	xml_text(f, r->target);
	fprintf(f, "</title>\n  <rect width=\"100%%\" height=\"100%%\" "
		   "fill=\"white\"/>\n");
	spectrum(f, r);
	rate(f, r, rates, n);
	legend(f, r);
	fprintf(f, "</svg>\n");
}
