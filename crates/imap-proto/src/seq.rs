//! Sequence sets and UID sets (RFC 9051 §9 `sequence-set`): ranges are
//! kept as ranges, never expanded into memory.

use std::fmt;

use crate::core::{PResult, SyntaxError, nz_number};

/// A sequence number, or `*` (the largest in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNumber {
    /// A number, 1 to 2^32-1.
    Value(u32),
    /// `*`.
    Largest,
}

impl SeqNumber {
    fn resolve(self, largest: u32) -> u32 {
        match self {
            SeqNumber::Value(v) => v,
            SeqNumber::Largest => largest,
        }
    }
}

/// A non-empty sequence set such as `1:5,7,10:*`, or `$`, the result of
/// the last `SEARCH RETURN (SAVE)` (RFC 5182 SEARCHRES), which the server
/// session resolves.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SequenceSet(Vec<(SeqNumber, SeqNumber)>);

impl SequenceSet {
    /// `$`: the saved search result (RFC 5182).
    pub fn saved() -> SequenceSet {
        SequenceSet(Vec::new())
    }

    /// Whether this is `$`.
    pub fn is_saved(&self) -> bool {
        self.0.is_empty()
    }

    /// A set of one range (`a:b`, in either order).
    pub fn range(a: SeqNumber, b: SeqNumber) -> SequenceSet {
        SequenceSet(vec![(a, b)])
    }

    /// A set from ranges; `None` when empty or a value is 0.
    pub fn from_ranges(ranges: Vec<(SeqNumber, SeqNumber)>) -> Option<SequenceSet> {
        let bad = |n: &SeqNumber| matches!(n, SeqNumber::Value(0));
        (!ranges.is_empty() && !ranges.iter().any(|(a, b)| bad(a) || bad(b)))
            .then_some(SequenceSet(ranges))
    }

    /// The set of these numbers (any order; 0 is dropped), runs joined:
    /// `[1, 2, 3, 7]` is `1:3,7`. `None` when nothing is left.
    pub fn from_numbers(numbers: &[u32]) -> Option<SequenceSet> {
        let numbers: std::borrow::Cow<'_, [u32]> = if numbers.is_sorted() {
            numbers.into()
        } else {
            let mut v = numbers.to_vec();
            v.sort_unstable();
            v.into()
        };
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for &n in numbers.iter().filter(|n| **n != 0) {
            match ranges.last_mut() {
                Some((_, b)) if n <= b.saturating_add(1) => *b = (*b).max(n),
                _ => ranges.push((n, n)),
            }
        }
        SequenceSet::from_spans(&ranges)
    }

    /// The set of these inclusive spans (`(lo, hi)`, as given); `None` when
    /// empty or a bound is 0.
    pub fn from_spans(spans: &[(u32, u32)]) -> Option<SequenceSet> {
        SequenceSet::from_ranges(
            spans
                .iter()
                .map(|&(a, b)| (SeqNumber::Value(a), SeqNumber::Value(b)))
                .collect(),
        )
    }

    /// The ranges as written.
    pub fn ranges(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.0
    }

    /// Whether `n` is in the set, with `*` meaning `largest`.
    pub fn contains(&self, n: u32, largest: u32) -> bool {
        self.0.iter().any(|(a, b)| {
            let (a, b) = (a.resolve(largest), b.resolve(largest));
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            (lo..=hi).contains(&n)
        })
    }

    /// The members among `1..=largest`, ascending, without duplicates,
    /// computed lazily range by range (cost follows the answer, not the
    /// ranges written: `1:4294967295` on a 10-message mailbox yields 10).
    pub fn iter(&self, largest: u32) -> impl Iterator<Item = u32> + '_ {
        self.spans(largest).into_iter().flat_map(|(lo, hi)| lo..=hi)
    }

    /// The members among `1..=largest` as inclusive spans, ascending,
    /// overlapping and adjacent ranges merged.
    pub fn spans(&self, largest: u32) -> Vec<(u32, u32)> {
        let mut spans: Vec<(u32, u32)> = self
            .0
            .iter()
            .map(|(a, b)| {
                let (a, b) = (a.resolve(largest), b.resolve(largest));
                // `*` of an empty mailbox is 0, which is no member.
                (a.min(b).max(1), a.max(b).min(largest))
            })
            .filter(|(lo, hi)| lo <= hi)
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(u32, u32)> = Vec::new();
        for (lo, hi) in spans {
            match merged.last_mut() {
                Some(last) if lo <= last.1.saturating_add(1) => last.1 = last.1.max(hi),
                _ => merged.push((lo, hi)),
            }
        }
        merged
    }

    /// Parses a sequence set.
    pub fn parse(i: &[u8]) -> Result<SequenceSet, SyntaxError> {
        match parse(i)? {
            ([], s) => Ok(s),
            _ => Err(SyntaxError::Invalid("sequence set")),
        }
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_saved() {
            return f.write_str("$");
        }
        let n = |x: &SeqNumber| match x {
            SeqNumber::Value(v) => v.to_string(),
            SeqNumber::Largest => "*".to_owned(),
        };
        for (k, (a, b)) in self.0.iter().enumerate() {
            if k > 0 {
                f.write_str(",")?;
            }
            if a == b {
                f.write_str(&n(a))?;
            } else {
                write!(f, "{}:{}", n(a), n(b))?;
            }
        }
        Ok(())
    }
}

fn seq_number(i: &[u8]) -> PResult<'_, SeqNumber> {
    if let Some(r) = i.strip_prefix(b"*") {
        return Ok((r, SeqNumber::Largest));
    }
    let (r, n) = nz_number(i)?;
    Ok((r, SeqNumber::Value(n)))
}

pub(crate) fn parse(mut i: &[u8]) -> PResult<'_, SequenceSet> {
    if let Some(r) = i.strip_prefix(b"$") {
        return Ok((r, SequenceSet::saved()));
    }
    let mut ranges = Vec::new();
    loop {
        let (r, a) = seq_number(i)?;
        let (r, b) = match r.strip_prefix(b":") {
            Some(r) => seq_number(r)?,
            None => (r, a),
        };
        ranges.push((a, b));
        match r.strip_prefix(b",") {
            Some(r) => i = r,
            None => return Ok((r, SequenceSet(ranges))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_of_an_empty_mailbox_names_nothing() {
        let s = SequenceSet::parse(b"*").unwrap();
        assert_eq!(s.iter(0).collect::<Vec<_>>(), Vec::<u32>::new());
        assert!(s.spans(0).is_empty());
        let s = SequenceSet::parse(b"3:*,1").unwrap();
        assert_eq!(s.iter(0).count(), 0);
        assert_eq!(s.iter(2).collect::<Vec<_>>(), vec![1, 2]);
    }
}
