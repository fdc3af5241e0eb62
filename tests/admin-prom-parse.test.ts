// The strict Prometheus parser used by the admin tests must itself reject what Prometheus
// rejects (or what our rules forbid), or its passing verdict on /metrics would mean nothing.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { escapeLabelValue } from "../src/admin/index.ts";
import { parsePrometheusText, PromParseError, sampleValue } from "./helpers/prom-parse.ts";

const DOCS_EXAMPLE = `# HELP http_requests_total The total number of HTTP requests.
# TYPE http_requests_total counter
http_requests_total{method="post",code="200"} 1027 1395066363000
http_requests_total{method="post",code="400"}    3 1395066363000

# Escaping in label values:
# HELP msdos_file_access_time_seconds x
# TYPE msdos_file_access_time_seconds gauge
msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9

# HELP metric_without_timestamp_and_labels Minimalistic line.
# TYPE metric_without_timestamp_and_labels gauge
metric_without_timestamp_and_labels 12.47

# HELP something_weird A weird metric from before the epoch.
# TYPE something_weird gauge
something_weird{problem="division by zero"} +Inf -3982045

# HELP http_request_duration_seconds A histogram of the request duration.
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{le="0.05"} 24054
http_request_duration_seconds_bucket{le="0.1"} 33444
http_request_duration_seconds_bucket{le="0.2"} 100392
http_request_duration_seconds_bucket{le="0.5"} 129389
http_request_duration_seconds_bucket{le="1"} 133988
http_request_duration_seconds_bucket{le="+Inf"} 144320
http_request_duration_seconds_sum 53423
http_request_duration_seconds_count 144320

# HELP rpc_duration_seconds A summary of the RPC duration in seconds.
# TYPE rpc_duration_seconds summary
rpc_duration_seconds{quantile="0.01"} 3102
rpc_duration_seconds{quantile="0.5"} 4773
rpc_duration_seconds_sum 1.7560473e+07
rpc_duration_seconds_count 2693
`;

const HEAD = "# HELP m help\n# TYPE m gauge\n";
const HIST = "# HELP h help\n# TYPE h histogram\n";
const CTR = "# HELP c_total help\n# TYPE c_total counter\n";

describe("prom-parse accepts valid text", () => {
  test("the exposition-format documentation example (with TYPE lines added)", () => {
    const fams = parsePrometheusText(DOCS_EXAMPLE);
    expect([...fams.keys()]).toEqual([
      "http_requests_total",
      "msdos_file_access_time_seconds",
      "metric_without_timestamp_and_labels",
      "something_weird",
      "http_request_duration_seconds",
      "rpc_duration_seconds",
    ]);
    expect(sampleValue(fams, "http_requests_total", { code: "400" })).toBe(3);
    const msdos = fams.get("msdos_file_access_time_seconds")!.samples[0]!;
    expect(msdos.labels.path).toBe("C:\\DIR\\FILE.TXT");
    expect(msdos.labels.error).toBe('Cannot find file:\n"FILE.TXT"');
    expect(sampleValue(fams, "something_weird")).toBe(Infinity);
    expect(fams.get("something_weird")!.samples[0]!.timestampMs).toBe(-3982045);
    expect(sampleValue(fams, "http_request_duration_seconds", {}, "http_request_duration_seconds_count")).toBe(144320);
    expect(fams.get("http_request_duration_seconds")!.help).toBe("A histogram of the request duration.");
  });

  test("HELP escapes, NaN, trailing comma in labels, empty text", () => {
    const fams = parsePrometheusText('# HELP m a\\\\b\\nc\n# TYPE m gauge\nm{a="1",} NaN\n');
    expect(fams.get("m")!.help).toBe("a\\b\nc");
    expect(Number.isNaN(sampleValue(fams, "m"))).toBe(true);
    expect(parsePrometheusText("").size).toBe(0);
  });
});

describe("prom-parse rejects", () => {
  const bad: Array<[string, string, RegExp]> = [
    ["no final line feed", HEAD + "m 1", /end with a line feed/],
    ["a name starting with a digit", "# HELP 1m x\n# TYPE 1m gauge\n", /invalid metric name/],
    ["a sample without TYPE", "# HELP m x\nm 1\n", /without a preceding # TYPE/],
    ["a sample without HELP", "# TYPE m gauge\nm 1\n", /without a preceding # HELP/],
    ["TYPE after samples", "# HELP m x\n# TYPE m gauge\nm 1\n# TYPE m gauge\n", /after its samples/],
    ["HELP after samples", "# TYPE m gauge\n# HELP m x\nm 1\n# HELP m y\n", /after its samples/],
    ["two TYPE lines", "# HELP m x\n# TYPE m gauge\n# TYPE m counter\nm 1\n", /second TYPE/],
    ["two HELP lines", "# HELP m x\n# HELP m y\n# TYPE m gauge\nm 1\n", /second HELP/],
    ["an unknown type", "# HELP m x\n# TYPE m meter\nm 1\n", /unknown type/],
    ["an invalid label escape", HEAD + 'm{a="x\\ty"} 1\n', /invalid escape/],
    ["an unescaped quote in a label value", HEAD + 'm{a="x"y"} 1\n', /expected , or }/],
    ["an unterminated label value", HEAD + 'm{a="x} 1\n', /unterminated/],
    ["a reserved label name", HEAD + 'm{__name__="x"} 1\n', /reserved/],
    ["a label given twice", HEAD + 'm{a="1",a="2"} 1\n', /given twice/],
    ["a label name with a dash", HEAD + 'm{a-b="1"} 1\n', /expected = after label a|invalid label name/],
    ["a non-float value", HEAD + "m 1,5\n", /not a float/],
    ["a hex value", HEAD + "m 0x10\n", /not a float/],
    ["a non-integer timestamp", HEAD + "m 1 2.5\n", /timestamp/],
    ["a duplicate series", HEAD + 'm{a="1"} 1\nm{a="1"} 2\n', /duplicate series/],
    ["non-contiguous families", HEAD + "# HELP n x\n# TYPE n gauge\nm 1\nn 1\nm{a=\"1\"} 1\n", /not contiguous/],
    ["a counter without _total", "# HELP c x\n# TYPE c counter\nc 1\n", /must end in _total/],
    ["a negative counter", CTR + "c_total -1\n", /negative/],
    ["a carriage return", HEAD + "m 1\r\n", /carriage return/],
    ["decreasing cumulative buckets", HIST + 'h_bucket{le="1"} 5\nh_bucket{le="2"} 4\nh_bucket{le="+Inf"} 5\nh_sum 1\nh_count 5\n', /below the previous/],
    ["le not increasing", HIST + 'h_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n', /not above/],
    ["no +Inf bucket", HIST + 'h_bucket{le="1"} 1\nh_sum 1\nh_count 1\n', /\+Inf/],
    ["_count differing from +Inf", HIST + 'h_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n', /differs from the \+Inf bucket/],
    ["a missing _sum", HIST + 'h_bucket{le="+Inf"} 2\nh_count 2\n', /missing _sum/],
    ["a bucket without le", HIST + "h_bucket 2\n", /without an le label/],
    ["a bare histogram sample", HIST + "h 2\n", /without _bucket/],
  ];
  for (const [what, text, message] of bad) {
    test(what, () => {
      let err: unknown;
      try {
        parsePrometheusText(text);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PromParseError);
      expect((err as Error).message).toMatch(message);
    });
  }

  test("a name without the required prefix", () => {
    expect(() => parsePrometheusText(HEAD + "m 1\n", { prefix: "myriad_" })).toThrow(/prefix/);
  });
});

test("escapeLabelValue output parses back to the same value, for any string", () => {
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom("a", "\\", '"', "\n", "n", "}", ",", "=", " ", "é", "😀") }), (v) => {
      const fams = parsePrometheusText(`${HEAD}m{l="${escapeLabelValue(v)}"} 1\n`);
      expect(fams.get("m")!.samples[0]!.labels.l).toBe(v);
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.string({ unit: "grapheme" }), (v) => {
      const fams = parsePrometheusText(`${HEAD}m{l="${escapeLabelValue(v)}"} 1\n`);
      expect(fams.get("m")!.samples[0]!.labels.l).toBe(v);
    }),
    { numRuns: 300 },
  );
});
