/*
 * iocx-bench merge: several --hdr-log files or --json reports (one per
 * load process or machine) combined exactly into one report.
 */
#ifndef IOCX_BENCH_MERGE_H
#define IOCX_BENCH_MERGE_H

/*
 * Run "iocx-bench merge [--json] FILE...": argv[0] is "merge".  Returns
 * the exit status: 0, 1 when a file cannot be read or decoded, 2 for bad
 * usage (a message on stderr each time).
 */
int bench_merge(int argc, char **argv);

#endif /* IOCX_BENCH_MERGE_H */
