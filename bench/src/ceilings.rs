//! PostgreSQL's own ceilings on this machine, measured in the same run as the
//! scenarios they are compared with: what the database alone answers for
//! single-row reads (`pgbench -S -M prepared`) and for small writes
//! (`pgbench -N -M prepared`) at a given number of clients. Absolute figures
//! differ from machine to machine; a scenario's share of its ceiling does
//! much less.

use std::collections::BTreeMap;
use std::process::Stdio;

use tokio::process::Command;

use crate::server::psql;

const DATABASE: &str = "shop_bench_pgbench";
/// pgbench's scale: 10 is a million accounts, far beyond the CPU caches.
const SCALE: &str = "10";

/// Transactions a second pgbench reached, by client count.
#[derive(Debug, Default)]
pub struct Ceilings {
    reads: BTreeMap<usize, f64>,
    writes: BTreeMap<usize, f64>,
}

impl Ceilings {
    /// Measures both ceilings at each of `clients` for `seconds` each; `None`
    /// (with a line saying why) when pgbench is not installed or fails.
    pub async fn measure(clients: &[usize], seconds: u64) -> Option<Self> {
        match Self::try_measure(clients, seconds).await {
            Ok(ceilings) => Some(ceilings),
            Err(err) => {
                println!("ceilings: not measured ({err:#})");
                None
            }
        }
    }

    async fn try_measure(clients: &[usize], seconds: u64) -> anyhow::Result<Self> {
        psql("postgres", &format!("DROP DATABASE IF EXISTS {DATABASE}")).await?;
        psql("postgres", &format!("CREATE DATABASE {DATABASE}")).await?;
        pgbench(&["-i", "-q", "-s", SCALE]).await?;
        let mut ceilings = Self::default();
        let seconds = seconds.to_string();
        for &n in clients {
            let n_text = n.to_string();
            let common = ["-M", "prepared", "-c", &n_text, "-j", "2", "-T", &seconds];
            let reads = tps(&pgbench(&[&["-S"][..], &common].concat()).await?)?;
            let writes = tps(&pgbench(&[&["-N"][..], &common].concat()).await?)?;
            println!(
                "ceilings, {n} clients: pgbench -S {reads:.0} tps (single-row reads), pgbench -N {writes:.0} tps (small writes)"
            );
            ceilings.reads.insert(n, reads);
            ceilings.writes.insert(n, writes);
        }
        psql("postgres", &format!("DROP DATABASE IF EXISTS {DATABASE}")).await?;
        Ok(ceilings)
    }

    /// `rate` as a share of the read ceiling at `clients`, for printing.
    pub fn of_reads(&self, rate: f64, clients: usize) -> String {
        share(rate, self.reads.get(&clients), "-S")
    }

    /// `rate` as a share of the write ceiling at `clients`, for printing.
    pub fn of_writes(&self, rate: f64, clients: usize) -> String {
        share(rate, self.writes.get(&clients), "-N")
    }
}

fn share(rate: f64, ceiling: Option<&f64>, which: &str) -> String {
    match ceiling {
        Some(ceiling) if *ceiling > 0.0 => {
            format!("{:.0} % of pgbench {which}", rate / ceiling * 100.0)
        }
        _ => String::new(),
    }
}

async fn pgbench(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("pgbench")
        .args(["-h", "127.0.0.1", "-U", "postgres"])
        .args(args)
        .arg(DATABASE)
        .stdin(Stdio::null())
        .output()
        .await?;
    anyhow::ensure!(
        output.status.success(),
        "pgbench {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The `tps = N` figure of a pgbench report.
fn tps(report: &str) -> anyhow::Result<f64> {
    report
        .lines()
        .find_map(|line| line.trim().strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no tps in pgbench's report: {report}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_tps_figure_is_read_from_a_report() {
        let report =
            "latency average = 0.5 ms\ntps = 2712.345678 (without initial connection time)\n";
        assert_eq!(super::tps(report).ok(), Some(2712.345678));
        assert!(super::tps("nothing").is_err());
    }
}
