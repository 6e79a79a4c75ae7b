//! The environment variables quiesce reads, as a value. The entry points (`cli/`, `init/`)
//! read the process's environment once and hand it to what needs it, so no layer below reads
//! it behind their back, and a test hands its own.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};

/// A set of environment variables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Vars(BTreeMap<OsString, OsString>);

impl Vars {
    /// `name`'s value, unless it is unset or empty: an empty variable counts as unset, as the
    /// docker CLI and the XDG directories treat them.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.0
            .get(OsStr::new(name))
            .map(OsString::as_os_str)
            .filter(|value| !value.is_empty())
    }

    /// [`Vars::get`] as text (`None` when it is not UTF-8).
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(OsStr::to_str)
    }

    /// `name`'s value as it is, empty included (for variables whose empty value means
    /// something to the program that reads them, as `CARGO` to cargo).
    pub fn raw(&self, name: &str) -> Option<&OsStr> {
        self.0.get(OsStr::new(name)).map(OsString::as_os_str)
    }
}

impl<K: Into<OsString>, V: Into<OsString>> FromIterator<(K, V)> for Vars {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Vars {
        Vars(
            pairs
                .into_iter()
                .map(|(name, value)| (name.into(), value.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_variable_counts_as_unset() {
        let vars: Vars = [("HOME", "/root"), ("DOCKER_HOST", "")]
            .into_iter()
            .collect();
        assert_eq!(vars.text("HOME"), Some("/root"));
        assert_eq!(vars.get("DOCKER_HOST"), None);
        assert_eq!(vars.raw("DOCKER_HOST"), Some(OsStr::new("")));
        assert_eq!(vars.get("NOPE"), None);
    }
}
