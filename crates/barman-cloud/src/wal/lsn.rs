//! Log sequence numbers, written `X/Y` (two hexadecimal halves) as PostgreSQL prints them.

use std::fmt;

/// A position in the WAL stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl Lsn {
    /// `X/Y` in hexadecimal (surrounding blanks ignored), as leniently as Barman's
    /// `parse_lsn` (barman/utils.py): any number of digits; `None` for anything else.
    pub fn parse(text: &str) -> Option<Lsn> {
        let (high, low) = text.trim().split_once('/')?;
        let high = u64::from_str_radix(high, 16).ok()?;
        let low = u64::from_str_radix(low, 16).ok()?;
        Some(Lsn((high << 32) | low))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_as_postgresql() {
        let lsn = Lsn::parse(" 1A/2B000028 ").unwrap();
        assert_eq!(lsn, Lsn(0x1A_2B00_0028));
        assert_eq!(lsn.to_string(), "1A/2B000028");
        assert!(Lsn::parse("0/0").unwrap() < Lsn::parse("0/1").unwrap());
        for bad in ["", "1A", "1A/", "/1", "G/1", "-1/0"] {
            assert_eq!(Lsn::parse(bad), None, "{bad}");
        }
    }
}
