//! Sharding across replicas (`--shard N/M`, `[server] shard = "N/M"`): which services a replica
//! runs. A service belongs to shard `fnv1a64(name) % M` — a stable hash of its name alone, so
//! every replica agrees without talking to the others, and adding a service moves no other.

use std::fmt;
use std::str::FromStr;

/// The most shards a config may be split into.
pub const MAX_SHARDS: u32 = 1024;

/// Shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Whether `service` belongs to this shard.
    pub fn owns(&self, service: &str) -> bool {
        shard_of(service, self.count) == self.index
    }

    /// Its number, from 0.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards there are.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// The shard of `service` among `count` (FNV-1a, 64 bits, of the name's bytes).
pub fn shard_of(service: &str, count: u32) -> u32 {
    crate::stable_hash::bucket(service, count)
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Why `N/M` is not a shard.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "shard \"{text}\" {why}; write N/M with 0 <= N < M <= {MAX_SHARDS}, e.g. \"0/3\", \"1/3\", \"2/3\""
)]
pub struct ShardError {
    text: String,
    why: &'static str,
}

impl FromStr for Shard {
    type Err = ShardError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let error = |why| ShardError {
            text: text.to_string(),
            why,
        };
        let (index, count) = text.split_once('/').ok_or_else(|| error("has no /"))?;
        let index: u32 = index
            .trim()
            .parse()
            .map_err(|_| error("does not start with a whole number"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| error("does not end with a whole number"))?;
        if count == 0 || count > MAX_SHARDS {
            return Err(error("has a shard count out of range"));
        }
        if index >= count {
            return Err(error("counts shards from 0: N must be below M"));
        }
        Ok(Self { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_belongs_to_exactly_one_shard_and_the_split_is_even() {
        let shards: Vec<Shard> = (0..3)
            .map(|index| format!("{index}/3").parse().unwrap())
            .collect();
        let mut sizes = [0usize; 3];
        for number in 0..3000 {
            let name = format!("service-{number}");
            let owners: Vec<u32> = shards
                .iter()
                .filter(|shard| shard.owns(&name))
                .map(Shard::index)
                .collect();
            assert_eq!(owners.len(), 1, "{name}: {owners:?}");
            sizes[owners[0] as usize] += 1;
        }
        assert!(
            sizes.iter().all(|size| (900..=1100).contains(size)),
            "{sizes:?}"
        );
        // Stable: the same name lands on the same shard in every version.
        assert_eq!(shard_of("mpesa", 3), shard_of("mpesa", 3));
        assert_eq!(shard_of("mpesa", 1), 0);
    }

    #[test]
    fn bad_shards_say_what_is_wrong() {
        assert_eq!(
            "3/3".parse::<Shard>().unwrap_err().to_string(),
            "shard \"3/3\" counts shards from 0: N must be below M; write N/M with 0 <= N < M <= 1024, e.g. \"0/3\", \"1/3\", \"2/3\""
        );
        assert!("1".parse::<Shard>().is_err());
        assert!("a/3".parse::<Shard>().is_err());
        assert!("0/0".parse::<Shard>().is_err());
        assert!("0/5000".parse::<Shard>().is_err());
        assert_eq!("2/3".parse::<Shard>().unwrap().to_string(), "2/3");
    }
}
