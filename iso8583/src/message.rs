//! A message in logical form: MTI plus field values, independent of any wire format.

use std::collections::BTreeMap;
use std::fmt;

use crate::describe;
use crate::mti::Mti;

/// An ISO 8583 message in *logical* form (see the crate docs for the value convention).
///
/// Field numbers are data-element numbers 2..=128; the secondary bitmap (field 1) is not a
/// field here, the codec sets it. Setting nothing is validated until [`crate::Spec::pack`].
///
/// `Debug` masks fields 2 and 35 and withholds 52, 64 and 128 (their ISO 8583:1987 meaning),
/// so a message can be logged or shown in a failed assertion without leaking card data.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Message {
    /// Message type indicator.
    pub mti: Mti,
    fields: BTreeMap<u8, Vec<u8>>,
}

impl Message {
    /// An empty message of type `mti`.
    pub fn new(mti: Mti) -> Message {
        Message { mti, fields: BTreeMap::new() }
    }

    /// Sets (or replaces) field `field` to `value` (logical form).
    pub fn set(&mut self, field: u8, value: impl Into<Vec<u8>>) -> &mut Self {
        self.fields.insert(field, value.into());
        self
    }

    /// Sets (or replaces) a text field; same as [`Message::set`] with the UTF-8 bytes.
    pub fn set_str(&mut self, field: u8, value: &str) -> &mut Self {
        self.set(field, value.as_bytes())
    }

    /// Builder form of [`Message::set`].
    #[must_use]
    pub fn with(mut self, field: u8, value: impl Into<Vec<u8>>) -> Message {
        self.set(field, value);
        self
    }

    /// The logical value of `field`.
    pub fn get(&self, field: u8) -> Option<&[u8]> {
        self.fields.get(&field).map(Vec::as_slice)
    }

    /// The logical value of `field` as text; `None` when absent or not UTF-8 (e.g. field 55).
    pub fn get_str(&self, field: u8) -> Option<&str> {
        self.get(field).and_then(|v| std::str::from_utf8(v).ok())
    }

    /// Whether `field` is present.
    pub fn has(&self, field: u8) -> bool {
        self.fields.contains_key(&field)
    }

    /// Removes `field`, returning its value.
    pub fn remove(&mut self, field: u8) -> Option<Vec<u8>> {
        self.fields.remove(&field)
    }

    /// Present fields in ascending field number order.
    pub fn fields(&self) -> impl Iterator<Item = (u8, &[u8])> + '_ {
        self.fields.iter().map(|(k, v)| (*k, v.as_slice()))
    }

    /// Number of present fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// True when no field is present.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub(crate) fn from_parts(mti: Mti, fields: BTreeMap<u8, Vec<u8>>) -> Message {
        Message { mti, fields }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Fields<'a>(&'a Message);
        impl fmt::Debug for Fields<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut m = f.debug_map();
                for (n, v) in self.0.fields() {
                    m.entry(&n, &format_args!("{}", describe::debug_value(n, v)));
                }
                m.finish()
            }
        }
        f.debug_struct("Message").field("mti", &self.mti).field("fields", &Fields(self)).finish()
    }
}
