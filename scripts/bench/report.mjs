// Statistics and the markdown table of the benchmark (pure functions, no I/O).

export function stats(values) {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  const n = v.length;
  if (n === 0) return { median: null, min: null, max: null, mean: null, n: 0 };
  const median = n % 2 === 1 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  const mean = v.reduce((a, b) => a + b, 0) / n;
  return { median: round(median), min: round(v[0]), max: round(v[n - 1]), mean: round(mean), n };
}

export function round(x, digits = 2) {
  if (x === null || x === undefined || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function fmt(x, unit) {
  if (x === null || x === undefined) return "—";
  if (unit === "MB") return x.toFixed(1);
  if (unit === "×") return x.toFixed(2);
  return x >= 100 ? x.toFixed(0) : x.toFixed(1);
}

function cell(r, unit) {
  if (!r) return "—";
  if (r.median === null) return r.errors ? `failed (${r.errors} errors)` : "—";
  const u = unit === "×" ? "×" : ` ${unit}`;
  const range = unit === "×" ? "" : r.n > 1 ? ` (${fmt(r.min, unit)}–${fmt(r.max, unit)}, n=${r.n})` : r.n === 1 ? " (n=1)" : "";
  const errs = r.errors ? `, ${r.errors} errors` : "";
  return `${fmt(r.median, unit)}${u}${range}${errs}`;
}

function ratioCell(r, fig) {
  if (!r || r.ratio === null || r.ratio === undefined) return "—";
  const met = fig.goalRatio !== undefined ? (r.ratio <= fig.goalRatio ? " ✓" : " ✗") : "";
  return `${r.ratio.toFixed(2)}×${met}`;
}

/** The markdown table: one row per figure, one column (value, ratio) per contender. */
export function markdownTable(report) {
  const cs = report.contenders;
  const ref = cs.find((c) => c.reference);
  const others = cs.filter((c) => !c.reference);
  const head = ["figure", "goal"];
  if (ref) head.push(ref.label);
  for (const c of others) head.push(c.label, ...(ref ? ["ratio"] : []));
  const lines = [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`];
  for (const fig of report.figures) {
    const row = [fig.title, fig.goal];
    if (ref) row.push(cell(fig.results[ref.key], fig.unit));
    for (const c of others) {
      const r = fig.results[c.key];
      let v = cell(r, fig.unit);
      if (fig.goalAbsolute !== undefined && r && r.median !== null) v += r.median <= fig.goalAbsolute ? " ✓" : " ✗";
      row.push(v);
      if (ref) row.push(ratioCell(r, fig));
    }
    lines.push(`| ${row.join(" | ")} |`);
  }
  return lines.join("\n");
}

export function machineLine(m) {
  const load = m.loadavgStart ? `; load average ${m.loadavgStart[0]} at start, ${m.loadavgEnd?.[0]} at end` : "";
  return `${m.cpu}, ${m.cores} cores, ${Math.round(m.memMB / 1024)} GB RAM, Linux ${m.kernel}, ${m.iptables}, ${m.iproute2}, ${m.nft}, Node ${m.node}${load}`;
}

export function markdownReport(report) {
  const lines = [];
  lines.push(`Machine: ${machineLine(report.machine)}`);
  lines.push(`Date: ${report.date}`);
  lines.push("");
  lines.push("```");
  lines.push(report.command);
  lines.push("```");
  lines.push("");
  lines.push(markdownTable(report));
  lines.push("");
  lines.push(
    "Times are the plugin's own wall time (spawn → exit, timed by a runner inside the node netns), " +
      "median (min–max, n). Ratio = tscni median / reference median; the reference is the Go " +
      "`bridge` + `host-local` with the iptables masquerade backend. RSS is the peak of one invocation " +
      "(`/usr/bin/time -f %M`, largest process of the tree).",
  );
  if (report.steps && Object.keys(report.steps).length) {
    lines.push("");
    lines.push("tscni's own step times (its `logFile`, median ms of the measured samples):");
    lines.push("");
    lines.push(stepsTable(report));
  }
  if (report.notes?.length) {
    lines.push("");
    for (const n of report.notes) lines.push(`- ${n}`);
  }
  return lines.join("\n");
}

/** Per-step medians from tscni's logFile: one row per (figure, step), one column per contender. */
export function stepsTable(report) {
  const cs = report.contenders.filter((c) => !c.reference);
  const lines = [`| figure | step | ${cs.map((c) => c.label).join(" | ")} |`, `| --- | --- | ${cs.map(() => "---").join(" | ")} |`];
  for (const [fig, byC] of Object.entries(report.steps)) {
    const title = report.figures.find((f) => f.key === fig)?.title ?? fig;
    const stepNames = [...new Set(cs.flatMap((c) => Object.keys(byC[c.key] ?? {})))];
    for (const step of stepNames) {
      const vals = cs.map((c) => {
        const st = byC[c.key]?.[step];
        return st && st.median !== null ? st.median.toFixed(1) : "—";
      });
      lines.push(`| ${title} | ${step} | ${vals.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}
