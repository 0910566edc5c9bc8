//! A stored value's JSON text. Values live as text in every store; a file store leaves the values
//! it recovered from a snapshot in a read-only map of that file ([`Text::Mapped`]) until they
//! are written, so a large store does not copy its snapshot onto the heap.

/// A stored value's JSON text: on the heap, or in a snapshot file that the engine has mapped
/// (values recovered from a snapshot stay there, out of the heap, until they are written).
#[derive(Debug)]
pub enum Text {
    Heap(Box<str>),
    Mapped(MappedStr),
}

/// Text inside a snapshot map that a file store keeps (`FileStore::maps`). A map is dropped only
/// after every slot pointing into it was re-pointed or copied to the heap under its group's
/// write lock (or dropped with the engine's items at close), and the text is read only under a
/// group lock, so it is valid whenever read.
#[derive(Debug, Clone, Copy)]
pub struct MappedStr {
    ptr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: a `MappedStr` is a shared view of immutable bytes (see above), like a `&'static str`
// for as long as any slot holds it.
unsafe impl Send for MappedStr {}
// SAFETY: as for `Send`.
unsafe impl Sync for MappedStr {}

impl MappedStr {
    /// A view of `text`, which must stay mapped and unchanged for as long as the view is used
    /// (see the type's documentation).
    pub fn new(text: &str) -> MappedStr {
        MappedStr {
            ptr: std::ptr::NonNull::from(text).cast(),
            len: text.len(),
        }
    }

    /// Whether the text lies inside `map`.
    pub fn is_within(&self, map: &[u8]) -> bool {
        let start = map.as_ptr() as usize;
        let at = self.ptr.as_ptr() as usize;
        at >= start && at + self.len <= start + map.len()
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        match self {
            Text::Heap(text) => text,
            // SAFETY: the bytes are valid UTF-8 (they were a `&str` when mapped) and alive
            // (see `MappedStr`).
            Text::Mapped(mapped) => unsafe {
                std::str::from_utf8_unchecked(std::slice::from_raw_parts(
                    mapped.ptr.as_ptr(),
                    mapped.len,
                ))
            },
        }
    }
}

impl Text {
    /// The text as an owned box: a copy when it is mapped (a mapped text must not leave the
    /// group lock it was read under).
    pub fn into_boxed(self) -> Box<str> {
        match self {
            Text::Heap(text) => text,
            Text::Mapped(_) => Box::from(&*self),
        }
    }
}
