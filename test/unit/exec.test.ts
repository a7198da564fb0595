import { describe, expect, it } from "vitest";
import { CommandFailedError, run } from "../../pkg/exec.js";

// run() feeds stdin and collects stdout/stderr through unnamed tmpfs files (O_TMPFILE),
// falling back to pipes: the observable contract is the same either way.
describe("run", () => {
  it("feeds stdin from offset 0 and returns stdout", async () => {
    const r = await run(["/bin/sh", "-c", "cat; echo done"], { stdin: "line 1\nline 2\n" });
    expect(r).toEqual({ code: 0, stdout: "line 1\nline 2\ndone\n", stderr: "" });
  });

  it("keeps stdout and stderr apart and reports the exit code with allowFailure", async () => {
    const r = await run(["/bin/sh", "-c", "echo out; echo err >&2; exit 3"], { allowFailure: true });
    expect(r).toEqual({ code: 3, stdout: "out\n", stderr: "err\n" });
  });

  it("rejects a non-zero exit with the command and its stderr", async () => {
    await expect(run(["/bin/sh", "-c", "echo boom >&2; exit 2"])).rejects.toBeInstanceOf(CommandFailedError);
    await expect(run(["/bin/sh", "-c", "echo boom >&2; exit 2"])).rejects.toThrow(/exit 2.*boom/);
  });

  it("returns output larger than a pipe buffer", async () => {
    const big = "x".repeat(300_000);
    const r = await run(["/bin/cat"], { stdin: big });
    expect(r.stdout.length).toBe(big.length);
  });

  it("calls onStdinWritten and runs concurrent children independently", async () => {
    let written = 0;
    const rs = await Promise.all([1, 2, 3].map((i) => run(["/bin/sh", "-c", `cat; echo ${i}`], { stdin: `in${i}\n`, onStdinWritten: () => written++ })));
    expect(rs.map((r) => r.stdout)).toEqual(["in1\n1\n", "in2\n2\n", "in3\n3\n"]);
    expect(written).toBe(3);
  });

  // The early settle itself needs nf_tables: test/integration/exec-netlink.test.ts.
  it("settleOnNetlinkClose: a child that never closes a netlink socket settles at its exit", async () => {
    const r = await run(["/bin/sh", "-c", "sleep 0.1; exit 5"], { settleOnNetlinkClose: {}, allowFailure: true });
    expect(r.code).toBe(5);
  });

  it("reports a tool that cannot be run", async () => {
    await expect(run(["/nonexistent/tool"])).rejects.toThrow(/cannot run \/nonexistent\/tool/);
  });
});
