//! CPU time of a process, read from /proc: what a server spends per request
//! or per delivery, whatever its throughput on this shared machine.

use anyhow::Context as _;

/// A process's user and kernel CPU seconds.
#[derive(Debug, Clone, Copy)]
pub struct CpuTime {
    user: f64,
    system: f64,
}

impl CpuTime {
    /// Process `pid`'s CPU time so far (Linux's /proc/PID/stat counts it in
    /// ticks of 1/100 s).
    pub fn of(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .with_context(|| format!("no process {pid}"))?;
        // Fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("unreadable /proc stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks = |index: usize| -> anyhow::Result<f64> {
            Ok(fields
                .get(index)
                .context("short /proc stat")?
                .parse::<f64>()?
                / 100.0)
        };
        // utime and stime are fields 14 and 15, the 12th and 13th after the name.
        Ok(Self {
            user: ticks(11)?,
            system: ticks(12)?,
        })
    }

    /// The CPU time spent since `earlier`.
    pub fn since(self, earlier: Self) -> Self {
        Self {
            user: self.user - earlier.user,
            system: self.system - earlier.system,
        }
    }

    /// Microseconds per item over `count` items: in all, user and kernel.
    pub fn micros_per(self, count: u64) -> [f64; 3] {
        let micros = |seconds: f64| seconds * 1e6 / count.max(1) as f64;
        let (user, system) = (micros(self.user), micros(self.system));
        [user + system, user, system]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_reads_a_process_that_exists() {
        CpuTime::of(std::process::id()).unwrap();
        assert_eq!(
            format!("{:#}", CpuTime::of(u32::MAX).unwrap_err()),
            format!(
                "no process {}: No such file or directory (os error 2)",
                u32::MAX
            )
        );
    }
}
