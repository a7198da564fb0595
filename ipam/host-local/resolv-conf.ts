/** resolv.conf text -> CNI `dns` (nameserver, domain, search, options). Pure. */
import type { Dns } from "../../pkg/types/result.js";

export function parseResolvConf(text: string): Dns {
  const dns: Dns = {};
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const [word, ...rest] = line.split(/\s+/);
    switch (word) {
      case "nameserver":
        if (rest[0]) (dns.nameservers ??= []).push(rest[0]);
        break;
      case "domain":
        if (rest[0]) dns.domain = rest[0];
        break;
      case "search":
        dns.search = rest;
        break;
      case "options":
        (dns.options ??= []).push(...rest);
        break;
    }
  }
  return dns;
}
