// Reads HdrHistogram interval logs with hdr-histogram-js (npm) and
// prints, as JSON, per tag: the number of intervals, and of the sum of
// its intervals (over every file) the total count, p50, p99 and max (in
// the logs' unit, nanoseconds here); tag "all" sums every interval.
// A FILE ending in .json is an iocx-bench --json report instead: each
// phase's latency_hdr counts as one interval of tag PHASE.ROUND.
// Used by check_bench.py and check_netns.py.
//
// usage: node read_hlog.js FILE...
"use strict";
const fs = require("fs");
const hdr = require("hdr-histogram-js");

const sums = {};
function add(tag, h) {
  if (!sums[tag]) {
    sums[tag] = { intervals: 0, hist: hdr.build({
      numberOfSignificantValueDigits: 2, highestTrackableValue: 2 ** 52,
    }) };
  }
  sums[tag].intervals++;
  sums[tag].hist.add(h);
}
for (const file of process.argv.slice(2)) {
  if (file.endsWith(".json")) {
    for (const p of JSON.parse(fs.readFileSync(file, "utf8")).phases) {
      const h = hdr.decodeFromCompressedBase64(p.latency_hdr);
      add(p.phase + "." + p.round, h);
      add("all", h);
    }
    continue;
  }
  const reader = new hdr.HistogramLogReader(fs.readFileSync(file, "utf8"));
  for (let h = reader.nextIntervalHistogram(); h;
       h = reader.nextIntervalHistogram()) {
    add(h.tag, h);
    add("all", h);
  }
}
const out = {};
for (const [tag, s] of Object.entries(sums)) {
  out[tag] = {
    intervals: s.intervals,
    count: s.hist.totalCount,
    p50: s.hist.getValueAtPercentile(50),
    p99: s.hist.getValueAtPercentile(99),
    max: s.hist.maxValue,
  };
}
process.stdout.write(JSON.stringify(out) + "\n");
