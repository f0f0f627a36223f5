//! A small network of the test's own (the machine allows `ip netns`, as root): a bridge in the
//! test's namespace and one network namespace per host, each joined to the bridge by a veth
//! pair, on a /24 of 10.203.0.0/16 picked from the process id. A host can be cut off (its link
//! down) and healed. Everything is removed when the `Lan` is dropped.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// The bridge, the hosts' namespaces and their links.
#[derive(Debug)]
pub struct Lan {
    tag: String,
    subnet: u32,
    hosts: usize,
}

fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("cannot run ip (iproute2; scripts/setup.sh installs it)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Lan {
    /// `hosts` namespaces on a new bridge.
    pub fn new(hosts: usize) -> Result<Lan> {
        let pid = std::process::id();
        let lan = Lan {
            // Interface names stay within 15 bytes: "c<5 digits>" plus "br", "n9", "v9", "p9".
            tag: format!("c{:05}", pid % 100_000),
            subnet: 20 + pid % 200,
            hosts: 0,
        };
        let mut lan = lan;
        let br = lan.bridge();
        ip(&["link", "add", &br, "type", "bridge"])?;
        ip(&[
            "addr",
            "add",
            &format!("10.203.{}.254/24", lan.subnet),
            "dev",
            &br,
        ])?;
        ip(&["link", "set", &br, "up"])?;
        for i in 1..=hosts {
            let (ns, v, p) = (lan.netns(i), lan.veth(i), lan.peer(i));
            ip(&["netns", "add", &ns])?;
            lan.hosts = i;
            ip(&["link", "add", &v, "type", "veth", "peer", "name", &p])?;
            ip(&["link", "set", &p, "netns", &ns])?;
            ip(&["link", "set", &v, "master", &br])?;
            ip(&["link", "set", &v, "up"])?;
            let addr = format!("{}/24", lan.host(i));
            ip(&["netns", "exec", &ns, "ip", "addr", "add", &addr, "dev", &p])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", &p, "up"])?;
            ip(&["netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        }
        Ok(lan)
    }

    fn bridge(&self) -> String {
        format!("{}br", self.tag)
    }

    fn veth(&self, i: usize) -> String {
        format!("{}v{i}", self.tag)
    }

    fn peer(&self, i: usize) -> String {
        format!("{}p{i}", self.tag)
    }

    /// Host `i`'s namespace (1-based).
    pub fn netns(&self, i: usize) -> String {
        format!("{}n{i}", self.tag)
    }

    /// Host `i`'s address.
    pub fn host(&self, i: usize) -> String {
        format!("10.203.{}.{i}", self.subnet)
    }

    /// Cuts host `i` off: its link goes down (it still reaches itself on 127.0.0.1).
    pub fn cut(&self, i: usize) -> Result<()> {
        ip(&[
            "netns",
            "exec",
            &self.netns(i),
            "ip",
            "link",
            "set",
            &self.peer(i),
            "down",
        ])
    }

    /// Brings host `i`'s link back.
    pub fn heal(&self, i: usize) -> Result<()> {
        ip(&[
            "netns",
            "exec",
            &self.netns(i),
            "ip",
            "link",
            "set",
            &self.peer(i),
            "up",
        ])
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for i in 1..=self.hosts {
            let _ = ip(&["netns", "del", &self.netns(i)]);
        }
        let _ = ip(&["link", "del", &self.bridge()]);
    }
}
