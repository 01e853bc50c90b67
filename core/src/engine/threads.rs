//! How many threads llama.cpp should use by default.
//!
//! llama.cpp's decode loop is memory-bound and its threads spin-wait on each other: more
//! threads than physical cores (hyper-threads, or llama-cpp-2's default of 4 on a 2-core machine)
//! made generation 3–5× slower in our measurements. The default is therefore the number of
//! physical cores this process may use.

use std::collections::HashSet;

/// The number of physical cores available to this process (at least 1).
pub fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    linux_physical_cores().map_or(logical, |physical| physical.clamp(1, logical))
}

/// Counts distinct (package, core) pairs in `/proc/cpuinfo`; `None` off Linux or when unknown.
fn linux_physical_cores() -> Option<usize> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    Some(count_cores(&cpuinfo)).filter(|n| *n > 0)
}

fn count_cores(cpuinfo: &str) -> usize {
    let mut cores = HashSet::new();
    let mut package = None;
    for line in cpuinfo.lines() {
        let mut parts = line.splitn(2, ':');
        let key = parts.next().unwrap_or("").trim();
        let value = parts.next().unwrap_or("").trim();
        match key {
            "physical id" => package = Some(value.to_owned()),
            "core id" => {
                cores.insert((package.clone(), value.to_owned()));
            }
            _ => {}
        }
    }
    cores.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyperthreads_count_once() {
        let info = "processor: 0\nphysical id: 0\ncore id: 0\n\nprocessor: 1\nphysical id: 0\ncore id: 0\n\nprocessor: 2\nphysical id: 0\ncore id: 1\n";
        assert_eq!(count_cores(info), 2);
    }

    #[test]
    fn at_least_one() {
        assert!(physical_cores() >= 1);
    }
}
