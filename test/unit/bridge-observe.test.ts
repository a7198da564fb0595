import { describe, expect, it } from "vitest";
import { ipv6Of, localIpv4, onLinkRoutes, randomMac, randomVethName } from "../../plugins/bridge/observe.js";

const FIB = `Main:
  +-- 0.0.0.0/1 2 0 2
     +-- 10.85.0.0/16 2 0 2
        +-- 10.85.0.0/31 1 0 0
           |-- 10.85.0.0
              /16 link UNICAST
           |-- 10.85.0.1
              /32 host LOCAL
        |-- 10.85.255.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/1 2 0 2
     +-- 10.85.0.0/16 2 0 2
           |-- 10.85.0.1
              /32 host LOCAL
        |-- 10.85.255.255
           /32 link BROADCAST
           |-- 127.0.0.1
              /32 host LOCAL
`;

describe("in-process views of /proc/net", () => {
  it("fib_trie: local IPv4 addresses only", () => {
    expect([...localIpv4(FIB)].sort()).toEqual(["10.85.0.1", "127.0.0.1"]);
  });
  it("route: on-link prefixes of one device", () => {
    const route = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
cni0\t0000550A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
`;
    expect([...onLinkRoutes(route, "cni0")]).toEqual(["10.85.0.0/16"]);
    expect([...onLinkRoutes(route, "eth0")]).toEqual([]);
  });
  it("if_inet6: global addresses of one device", () => {
    const t = `fe8000000000000068ffc7fffee6eea3 03 40 20 80     cni0
fd000000000000000000000000000001 03 40 00 80     cni0
00000000000000000000000000000001 01 80 10 80       lo
`;
    expect([...ipv6Of(t, "cni0")]).toEqual(["fd00:0000:0000:0000:0000:0000:0000:0001/64"]);
  });
  it("random names and MACs", () => {
    expect(randomMac()).toMatch(/^[0-9a-f][26ae](:[0-9a-f]{2}){5}$/);
    expect(randomVethName(new Set())).toMatch(/^veth[0-9a-f]{8}$/);
  });
});
