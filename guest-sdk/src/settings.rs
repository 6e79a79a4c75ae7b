//! Settings declared once. A policy writes each setting a single time, with its type, its
//! default and its documentation, in [`settings!`](crate::settings!); the struct, its
//! `Default`, its deserialization (unknown keys refused, every value checked, errors naming the
//! key) and the settings documentation shown by `quiesce policy list` all come from that one
//! declaration, so they cannot drift apart.
//!
//! ```
//! use std::time::Duration;
//! use quiesce_policy_sdk::settings::{DocumentedSettings, PositiveDuration};
//!
//! quiesce_policy_sdk::settings! {
//!     /// Operator settings for `nginx`.
//!     pub struct Settings {
//!         /// How long workers may take to finish in-flight requests after QUIT.
//!         graceful_timeout: PositiveDuration = PositiveDuration::secs(60),
//!         /// SIGKILL after the fast shutdown.
//!         kill: bool = true,
//!     }
//! }
//!
//! assert_eq!(Settings::default().graceful_timeout.get(), Duration::from_secs(60));
//! assert!(Settings::doc().contains("- `graceful_timeout` (duration, default 1m): How long"));
//! let zero = quiesce_policy_sdk::parse_settings::<Settings>(r#"{"graceful_timeout": "0s"}"#);
//! assert!(zero.unwrap_err().contains("`graceful_timeout` must be more than 0s"));
//! ```

use std::fmt::Debug;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Signal, human_duration};

/// A duration longer than zero, written as people write it (`90s`, `15m`, or a number of
/// seconds). Zero is refused, naming the setting: a zero timeout is a mistake, not a choice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PositiveDuration(Duration);

impl PositiveDuration {
    /// `seconds` seconds.
    pub const fn secs(seconds: u64) -> PositiveDuration {
        PositiveDuration(Duration::from_secs(seconds))
    }

    /// `minutes` minutes.
    pub const fn mins(minutes: u64) -> PositiveDuration {
        PositiveDuration(Duration::from_secs(minutes * 60))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl std::ops::Deref for PositiveDuration {
    type Target = Duration;

    fn deref(&self) -> &Duration {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        human_duration::deserialize(deserializer).map(PositiveDuration)
    }
}

impl Serialize for PositiveDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        human_duration::serialize(&self.0, serializer)
    }
}

/// A type a setting may have: how the documentation names it and shows a value, and which
/// values it refuses beyond what deserializing refuses.
pub trait Setting: DeserializeOwned + Clone + Debug {
    /// The kind, as the documentation names it: `duration`, `bool`, `signal`...
    const KIND: &'static str;

    /// A value as the documentation shows it (a default).
    fn show(&self) -> String;

    /// Refuses a value the type allows but a setting must not have; `key` names the setting.
    fn check(&self, key: &str) -> Result<(), String> {
        let _ = key;
        Ok(())
    }
}

impl Setting for PositiveDuration {
    const KIND: &'static str = "duration";

    fn show(&self) -> String {
        humantime::format_duration(self.0).to_string()
    }

    fn check(&self, key: &str) -> Result<(), String> {
        if self.0.is_zero() {
            return Err(format!("`{key}` must be more than 0s"));
        }
        Ok(())
    }
}

impl Setting for bool {
    const KIND: &'static str = "bool";

    fn show(&self) -> String {
        self.to_string()
    }
}

impl Setting for Signal {
    const KIND: &'static str = "signal";

    fn show(&self) -> String {
        self.name()
    }
}

impl Setting for String {
    const KIND: &'static str = "string";

    fn show(&self) -> String {
        if self.is_empty() {
            "none".to_string()
        } else {
            format!("`{self}`")
        }
    }
}

/// A command: the program and its arguments.
impl Setting for Vec<String> {
    const KIND: &'static str = "list of strings";

    fn show(&self) -> String {
        if self.is_empty() {
            "none".to_string()
        } else {
            format!("`{}`", self.join(" "))
        }
    }

    fn check(&self, key: &str) -> Result<(), String> {
        if self.first().is_some_and(String::is_empty) {
            return Err(format!("`{key}` must start with a program name"));
        }
        Ok(())
    }
}

impl<T: Setting> Setting for Option<T> {
    const KIND: &'static str = T::KIND;

    fn show(&self) -> String {
        self.as_ref().map_or_else(|| "none".to_string(), T::show)
    }

    fn check(&self, key: &str) -> Result<(), String> {
        self.as_ref().map_or(Ok(()), |value| value.check(key))
    }
}

/// One setting, as documented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldDoc {
    /// The key.
    pub key: &'static str,
    /// Its kind (`duration`, `bool`...).
    pub kind: &'static str,
    /// Its default, as shown.
    pub default: String,
    /// What it does.
    pub doc: String,
}

impl FieldDoc {
    /// The entry for setting `key` of type `T` with `default` and the doc comment's lines.
    pub fn new<T: Setting>(key: &'static str, default: &T, doc: &[&str]) -> FieldDoc {
        FieldDoc {
            key,
            kind: T::KIND,
            default: default.show(),
            doc: doc
                .iter()
                .map(|line| line.trim())
                .collect::<Vec<_>>()
                .join(" "),
        }
    }

    /// `` - `key` (kind, default value): what it does ``.
    pub fn line(&self) -> String {
        format!(
            "- `{}` ({}, default {}): {}",
            self.key, self.kind, self.default, self.doc
        )
    }
}

/// Settings that can list themselves: what [`settings!`](crate::settings!) implements.
pub trait DocumentedSettings {
    /// Every setting, in declaration order.
    fn fields() -> Vec<FieldDoc>;

    /// The settings documentation (Markdown), one line per setting.
    fn doc() -> String {
        Self::fields()
            .iter()
            .map(FieldDoc::line)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A policy without settings.
impl DocumentedSettings for () {
    fn fields() -> Vec<FieldDoc> {
        Vec::new()
    }
}

/// Declares a policy's settings once: each field with its type (a [`Setting`]), its default
/// and its doc comment. Produces the struct (public fields), `Default`, `Deserialize` (unknown
/// keys refused; each value checked by [`Setting::check`], errors naming the key) and
/// [`DocumentedSettings`]. See the [module documentation](crate::settings).
#[macro_export]
macro_rules! settings {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident {
            $(
                $(#[doc = $doc:literal])+
                $field:ident : $ty:ty = $default:expr
            ),* $(,)?
        }
    ) => {
        $(#[$attr])*
        #[derive(Clone, Debug, PartialEq)]
        $vis struct $name {
            $( $(#[doc = $doc])+ pub $field: $ty, )*
        }

        impl ::core::default::Default for $name {
            fn default() -> Self {
                $name { $( $field: $default, )* }
            }
        }

        impl $crate::settings::DocumentedSettings for $name {
            fn fields() -> ::std::vec::Vec<$crate::settings::FieldDoc> {
                let defaults = <$name as ::core::default::Default>::default();
                ::std::vec![$(
                    $crate::settings::FieldDoc::new::<$ty>(
                        ::core::stringify!($field),
                        &defaults.$field,
                        &[$($doc),+],
                    ),
                )*]
            }
        }

        const _: () = {
            #[derive($crate::__private::serde::Deserialize)]
            #[serde(crate = "quiesce_policy_sdk::__private::serde", default, deny_unknown_fields)]
            struct Written {
                $( $field: $ty, )*
            }

            impl ::core::default::Default for Written {
                fn default() -> Self {
                    let defaults = <$name as ::core::default::Default>::default();
                    Written { $( $field: defaults.$field, )* }
                }
            }

            impl<'de> $crate::__private::serde::Deserialize<'de> for $name {
                fn deserialize<D>(deserializer: D) -> ::core::result::Result<Self, D::Error>
                where
                    D: $crate::__private::serde::Deserializer<'de>,
                {
                    use $crate::__private::serde::de::Error as _;
                    let written = <Written as $crate::__private::serde::Deserialize>::deserialize(
                        deserializer,
                    )?;
                    $(
                        $crate::settings::Setting::check(&written.$field, ::core::stringify!($field))
                            .map_err(D::Error::custom)?;
                    )*
                    ::core::result::Result::Ok($name { $( $field: written.$field, )* })
                }
            }
        };
    };
}
