//! Command-line options: `--key value` pairs and bare `--flag`s.

use std::collections::HashMap;
use std::str::FromStr;

/// Parsed options of one subcommand.
pub struct Args {
    values: HashMap<String, String>,
    flags: Vec<String>,
}

impl Args {
    pub fn parse(argv: impl Iterator<Item = String>) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut flags = Vec::new();
        let mut argv = argv.peekable();
        while let Some(a) = argv.next() {
            let Some(key) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument {a}"));
            };
            match argv.peek() {
                Some(v) if !v.starts_with("--") => {
                    values.insert(key.to_string(), argv.next().unwrap_or_default());
                }
                _ => flags.push(key.to_string()),
            }
        }
        Ok(Args { values, flags })
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(String::as_str)
    }

    pub fn get<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.values.get(key) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("bad value for --{key}: {v}")),
        }
    }

    pub fn flag(&self, key: &str) -> bool {
        self.flags.iter().any(|f| f == key)
    }

    /// A comma-separated list of numbers (`0,2,4`) or ranges (`0-3`).
    pub fn cpus(&self, key: &str) -> Result<Option<Vec<usize>>, String> {
        let Some(v) = self.values.get(key) else {
            return Ok(None);
        };
        let mut out = Vec::new();
        for part in v.split(',').filter(|p| !p.is_empty()) {
            let bad = || format!("bad CPU list --{key} {v}");
            match part.split_once('-') {
                Some((a, b)) => {
                    let (a, b): (usize, usize) =
                        (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                    out.extend(a..=b);
                }
                None => out.push(part.parse().map_err(|_| bad())?),
            }
        }
        Ok(Some(out))
    }
}
