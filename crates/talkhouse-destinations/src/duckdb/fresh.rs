//! Which group keys a table may hold, for tables a session has filled from empty.
//!
//! A bulk load into an empty table writes mostly keys the table does not hold: those rows can be
//! appended to the table as they are, without the staging table, the scan of the table's keys
//! and the `INSERT … SELECT` that the merge needs for the rest. A session knows which keys such
//! a table holds only as long as it alone wrote them: it keeps the hash of every group key it
//! writes in a Bloom filter, which may answer "perhaps" for a key it never saw (that row then
//! goes through the merge, which is always right) but never "no" for one it did.
//!
//! Bounded memory: about 10 bits a key (a false positive one time in a hundred: that row only
//! takes the slower way), some 12 MB for 10M keys, up to twice that as the filters are sized
//! ahead. The filter grows by adding filters of twice the capacity as keys arrive, so a small
//! table costs a few kilobytes.

use fastbloom::BloomFilter;

/// Keys the first filter is sized for; each next one holds twice as many as the one before.
const FIRST_CAPACITY: usize = 1 << 16;
/// The false-positive rate of each filter.
const FALSE_POSITIVES: f64 = 0.01;

/// The group keys written to a table that was empty when the session first wrote to it, as
/// hashes ([`super::batch::group_key_hashes`]).
pub(crate) struct NewKeys {
    /// Full filters, then the one being filled (last).
    filters: Vec<BloomFilter>,
    /// Keys in the last filter, and what it was sized for.
    in_last: usize,
    last_capacity: usize,
}

impl NewKeys {
    /// No keys.
    pub(crate) fn new() -> Self {
        Self {
            filters: vec![filter(FIRST_CAPACITY)],
            in_last: 0,
            last_capacity: FIRST_CAPACITY,
        }
    }

    /// Whether the table may hold `hash`: `false` is certain, `true` is not.
    pub(crate) fn may_hold(&self, hash: u64) -> bool {
        self.filters.iter().any(|f| f.contains(&hash))
    }

    /// Notes that the table now holds `hash`.
    pub(crate) fn insert(&mut self, hash: u64) {
        if self.in_last >= self.last_capacity {
            self.last_capacity *= 2;
            self.filters.push(filter(self.last_capacity));
            self.in_last = 0;
        }
        if let Some(last) = self.filters.last_mut() {
            last.insert(&hash);
            self.in_last += 1;
        }
    }
}

fn filter(capacity: usize) -> BloomFilter {
    BloomFilter::with_false_pos(FALSE_POSITIVES).expected_items(capacity)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_inserted_is_held_and_few_others_are() {
        let mut keys = NewKeys::new();
        assert!(!keys.may_hold(1), "nothing was inserted yet");
        // Past the first filter's capacity, so that a second and a third are added.
        let n = 300_000u64;
        for i in 0..n {
            keys.insert(i * 2);
        }
        assert!(keys.filters.len() >= 3, "{} filters", keys.filters.len());
        assert!((0..n).all(|i| keys.may_hold(i * 2)), "a false negative");
        let false_positives = (0..n).filter(|i| keys.may_hold(i * 2 + 1)).count();
        // Three filters at 1% each: under 3% in all.
        assert!(false_positives < 9_000, "{false_positives} false positives");
    }
}
