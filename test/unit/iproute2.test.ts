import { describe, expect, it } from "vitest";
import { batchArg, errorText, isExists, isNoDevice, line, linkNames, parseFailedLine, parseFailedLines, parseJsonStream } from "../../pkg/iproute2.js";

describe("batch lines", () => {
  it("quotes only what iproute2's makeargs would split", () => {
    expect(line("link", "set", "dev", "eth0", "alias", "tscni:n:eth0:c1")).toBe("link set dev eth0 alias tscni:n:eth0:c1");
    expect(batchArg("a#b")).toBe('"a#b"');
    expect(batchArg("a b")).toBe('"a b"');
    expect(batchArg('a"b')).toBe("'a\"b'");
    expect(() => batchArg("a\nb")).toThrow();
    expect(() => batchArg("")).toThrow();
  });
});

describe("batch output", () => {
  it("splits back-to-back JSON arrays", () => {
    expect(parseJsonStream('[{"a":1}]\n[{"b":"]["}][]')).toEqual([[{ a: 1 }], [{ b: "][" }], []]);
  });
  it("names the failing line", () => {
    const err = 'RTNETLINK answers: File exists\nCommand failed -:2\n';
    expect(parseFailedLine(err)).toBe(2);
    expect(parseFailedLines('Cannot find device "x"\nCommand failed -:1\nCannot find device "y"\nCommand failed -:3\n')).toEqual([1, 3]);
    expect(errorText(err)).toBe("RTNETLINK answers: File exists");
    expect(isExists(err)).toBe(true);
    expect(isNoDevice('Cannot find device "eth0"')).toBe(true);
  });
  it("reads /proc/net/dev", () => {
    const dev = `Inter-|   Receive |  Transmit
 face |bytes    packets
    lo:       0       0    0    0
  cni0:    1234      10    0    0
veth01234567:  0 0 0 0
`;
    expect([...linkNames(dev)]).toEqual(["lo", "cni0", "veth01234567"]);
  });
});
