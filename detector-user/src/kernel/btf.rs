//! A minimal reader of raw BTF (the format of `/sys/kernel/btf/vmlinux`), just enough to find
//! the byte offset of a struct member: the kernel programs are built without CO-RE, so the agent
//! hands them offsets taken from the running kernel instead of constants valid on one kernel only.
//!
//! Format: the kernel's `Documentation/bpf/btf.rst` and `include/uapi/linux/btf.h`.

use std::collections::HashMap;
use std::fmt;
use std::ops::Range;

const VMLINUX_PATH: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const VERSION: u8 = 1;
/// `struct btf_header` up to `str_len`; later kernels may append fields, `hdr_len` says.
const MIN_HEADER_LEN: usize = 24;
/// `struct btf_type`: name_off, info, size/type.
const TYPE_HEADER_LEN: usize = 12;
/// `struct btf_member`: name_off, type, offset.
const MEMBER_LEN: usize = 12;
/// Valid BTF nests typedef chains and anonymous members a few levels deep; malformed BTF could
/// loop forever without a bound.
const MAX_DEPTH: usize = 64;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

/// Which members an offset may name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bits {
    Whole,
    WholeOrByte,
}

#[derive(Debug)]
pub enum BtfError {
    Read {
        path: String,
        source: std::io::Error,
    },
    Malformed(String),
    NoStruct(String),
    NoMember {
        struct_name: String,
        path: String,
        /// The struct or union the lookup failed in, which differs from `struct_name` in a
        /// dotted path.
        container: String,
        segment: String,
    },
    NotComposite {
        struct_name: String,
        path: String,
        /// The leading part of `path` whose type is not a struct or union.
        prefix: String,
    },
    Bitfield {
        struct_name: String,
        path: String,
    },
    Unaligned {
        struct_name: String,
        path: String,
        bit_offset: u32,
    },
    InvalidPath(String),
}

impl fmt::Display for BtfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BtfError::Read { path, source } => write!(f, "cannot read BTF from {path}: {source}"),
            BtfError::Malformed(what) => write!(f, "malformed BTF: {what}"),
            BtfError::NoStruct(name) => write!(f, "BTF has no struct {name}"),
            BtfError::NoMember {
                struct_name,
                path,
                container,
                segment,
            } => {
                write!(f, "struct {struct_name} has no member {path}")?;
                if segment != path {
                    write!(f, " ({container} has no member {segment})")?;
                }
                Ok(())
            }
            BtfError::NotComposite {
                struct_name,
                path,
                prefix,
            } => write!(
                f,
                "cannot look up {path} in struct {struct_name}: member {prefix} is not a struct \
                 or union (pointers are not followed)"
            ),
            BtfError::Bitfield { struct_name, path } => write!(
                f,
                "member {path} of struct {struct_name} is a bitfield, which has no byte offset"
            ),
            BtfError::Unaligned {
                struct_name,
                path,
                bit_offset,
            } => write!(
                f,
                "member {path} of struct {struct_name} starts at bit {bit_offset} of its \
                 container, not on a byte boundary"
            ),
            BtfError::InvalidPath(path) => {
                write!(f, "invalid member path {path:?}: empty segment")
            }
        }
    }
}

impl std::error::Error for BtfError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BtfError::Read { source, .. } => Some(source),
            _ => None,
        }
    }
}

fn malformed(what: impl Into<String>) -> BtfError {
    BtfError::Malformed(what.into())
}

/// What member lookup needs to know of a type; every other kind is opaque to it.
#[derive(Debug)]
enum Shape {
    Int {
        size: u32,
        bits: u32,
        bit_offset: u32,
    },
    Struct(Composite),
    Union(Composite),
    /// typedef, const, volatile, restrict, type_tag: the same layout as `target`.
    Alias {
        target: u32,
    },
    /// A kernel function: what fentry, fexit and LSM programs attach to by name.
    Function,
    Opaque,
}

#[derive(Debug)]
struct Composite {
    /// Read only by the tests' sanity checks of resolved offsets.
    #[cfg_attr(not(test), allow(dead_code))]
    size: u32,
    /// Range into `Btf::members`.
    members: Range<usize>,
}

#[derive(Debug)]
struct Type {
    name_off: u32,
    shape: Shape,
}

#[derive(Clone, Copy, Debug)]
struct Member {
    name_off: u32,
    type_id: u32,
    bit_offset: u32,
    /// Non-zero only for a bitfield declared in a `kind_flag` struct.
    bitfield_size: u32,
}

/// A member found by name, with its bit offset from the composite the search started in.
struct Found {
    member: Member,
    bit_offset: u64,
}

/// Parsed BTF: every type by id, and the named structs indexed once for lookups.
#[derive(Debug)]
pub struct Btf {
    /// Indexed by type id; id 0 is `void`.
    types: Vec<Type>,
    members: Vec<Member>,
    strings: Vec<u8>,
    /// The first STRUCT of each name; a FWD of the same name is a different kind and not here.
    structs: HashMap<String, u32>,
    /// (name offset, value) of every enumerator, of ENUM and ENUM64 types alike.
    enumerators: Vec<(u32, i64)>,
}

impl Btf {
    /// Reads and parses the running kernel's BTF.
    pub fn from_sys_fs() -> Result<Btf, BtfError> {
        let bytes = std::fs::read(VMLINUX_PATH).map_err(|source| BtfError::Read {
            path: VMLINUX_PATH.to_owned(),
            source,
        })?;
        Btf::parse(&bytes)
    }

    /// Parses raw BTF in the host's byte order, as the kernel exports it.
    pub fn parse(bytes: &[u8]) -> Result<Btf, BtfError> {
        let sections = Sections::locate(bytes)?;
        let mut btf = Btf {
            types: vec![Type {
                name_off: 0,
                shape: Shape::Opaque,
            }],
            members: Vec::new(),
            strings: sections.strings.to_vec(),
            structs: HashMap::new(),
            enumerators: Vec::new(),
        };
        btf.parse_types(sections.types)?;
        btf.index_structs()?;
        Ok(btf)
    }

    /// Byte offset of the dotted member `path` (e.g. `"f_path.dentry"`) from the start of
    /// `struct struct_name`, through embedded and anonymous structs and unions but never through
    /// a pointer.
    pub fn member_offset(&self, struct_name: &str, path: &str) -> Result<u32, BtfError> {
        self.offset_of(struct_name, path, Bits::Whole)
    }

    /// The byte offset of a member that may be a bitfield of exactly one byte that starts on a
    /// byte (`enum fs_context_purpose purpose:8`): on a little-endian machine, that byte holds
    /// its value.
    pub fn byte_member_offset(&self, struct_name: &str, path: &str) -> Result<u32, BtfError> {
        self.offset_of(struct_name, path, Bits::WholeOrByte)
    }

    fn offset_of(&self, struct_name: &str, path: &str, bits: Bits) -> Result<u32, BtfError> {
        let mut type_id = self.struct_id(struct_name)?;
        let mut bit_offset = 0u64;
        // Bytes of `path` already descended, with the dot that follows them.
        let mut walked = 0usize;
        for segment in path.split('.') {
            if segment.is_empty() {
                return Err(BtfError::InvalidPath(path.to_owned()));
            }
            let composite = self
                .composite(type_id)?
                .ok_or_else(|| BtfError::NotComposite {
                    struct_name: struct_name.to_owned(),
                    path: path.to_owned(),
                    prefix: path[..walked.saturating_sub(1)].to_owned(),
                })?;
            let found =
                self.find_member(composite, segment, 0)?
                    .ok_or_else(|| BtfError::NoMember {
                        struct_name: struct_name.to_owned(),
                        path: path.to_owned(),
                        container: self.describe(type_id),
                        segment: segment.to_owned(),
                    })?;
            self.check_addressable(&found.member, struct_name, path, bits)?;
            bit_offset += found.bit_offset;
            type_id = found.member.type_id;
            walked += segment.len() + 1;
        }
        u32::try_from(bit_offset / 8)
            .map_err(|_| malformed(format!("offset of {struct_name}.{path} overflows u32")))
    }

    /// Size in bytes of `struct name`.
    #[cfg(test)]
    pub fn struct_size(&self, name: &str) -> Result<u32, BtfError> {
        match &self.type_by_id(self.struct_id(name)?)?.shape {
            Shape::Struct(composite) => Ok(composite.size),
            _ => Err(malformed(format!(
                "struct {name} is indexed but not a struct"
            ))),
        }
    }

    fn parse_types(&mut self, section: &[u8]) -> Result<(), BtfError> {
        let mut rest = section;
        while !rest.is_empty() {
            let id = self.types.len();
            let (ty, len) = self
                .parse_type(rest)
                .map_err(|e| malformed(format!("type {id}: {e}")))?;
            self.types.push(ty);
            rest = &rest[len..];
        }
        Ok(())
    }

    /// Decodes the type at the start of `bytes`; returns it with its encoded length.
    fn parse_type(&mut self, bytes: &[u8]) -> Result<(Type, usize), String> {
        let word = |index: usize| read_u32(bytes, index * 4).ok_or("truncated type header");
        let (name_off, info, size_or_type) = (word(0)?, word(1)?, word(2)?);
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31 == 1;
        let trailing_len =
            trailing_len(kind, vlen).ok_or_else(|| format!("unknown kind {kind}"))?;
        let len = TYPE_HEADER_LEN + trailing_len;
        let trailing = bytes
            .get(TYPE_HEADER_LEN..len)
            .ok_or("data runs past the type section")?;
        let shape = match kind {
            KIND_INT => int_shape(size_or_type, trailing),
            KIND_STRUCT => Shape::Struct(self.parse_members(size_or_type, trailing, kind_flag)),
            KIND_UNION => Shape::Union(self.parse_members(size_or_type, trailing, kind_flag)),
            KIND_TYPEDEF | KIND_CONST | KIND_VOLATILE | KIND_RESTRICT | KIND_TYPE_TAG => {
                Shape::Alias {
                    target: size_or_type,
                }
            }
            KIND_ENUM | KIND_ENUM64 => {
                self.parse_enumerators(kind, trailing);
                Shape::Opaque
            }
            KIND_FUNC => Shape::Function,
            _ => Shape::Opaque,
        };
        Ok((Type { name_off, shape }, len))
    }

    fn parse_members(&mut self, size: u32, trailing: &[u8], kind_flag: bool) -> Composite {
        let start = self.members.len();
        for raw in trailing.chunks_exact(MEMBER_LEN) {
            let word = |index: usize| read_u32(raw, index * 4).unwrap_or_default();
            let offset = word(2);
            // With kind_flag the offset word packs the bitfield size above a 24-bit offset.
            let (bit_offset, bitfield_size) = if kind_flag {
                (offset & 0x00ff_ffff, offset >> 24)
            } else {
                (offset, 0)
            };
            self.members.push(Member {
                name_off: word(0),
                type_id: word(1),
                bit_offset,
                bitfield_size,
            });
        }
        Composite {
            size,
            members: start..self.members.len(),
        }
    }

    /// Whether the kernel describes a function `name`: an inlined or static-and-unused
    /// function has no BTF entry, and no fentry, fexit or LSM program attaches to it.
    pub fn has_function(&self, name: &str) -> bool {
        self.types.iter().any(|ty| {
            matches!(ty.shape, Shape::Function) && self.name(ty.name_off).is_ok_and(|n| n == name)
        })
    }

    /// ENUM entries are (name_off, i32 value); ENUM64 entries (name_off, low u32, high u32).
    fn parse_enumerators(&mut self, kind: u32, trailing: &[u8]) {
        let entry_len = if kind == KIND_ENUM64 { 12 } else { 8 };
        for raw in trailing.chunks_exact(entry_len) {
            let word = |index: usize| read_u32(raw, index * 4).unwrap_or_default();
            let value = if kind == KIND_ENUM64 {
                (i64::from(word(2)) << 32) | i64::from(word(1))
            } else {
                i64::from(word(1) as i32)
            };
            self.enumerators.push((word(0), value));
        }
    }

    /// The value of the enumerator `name`: C gives enumerators one namespace, so the name
    /// alone identifies it (e.g. `READING_MODULE`).
    pub fn enumerator(&self, name: &str) -> Option<i64> {
        self.enumerators
            .iter()
            .find(|(name_off, _)| self.name(*name_off).is_ok_and(|n| n == name))
            .map(|(_, value)| *value)
    }

    fn index_structs(&mut self) -> Result<(), BtfError> {
        let mut structs = HashMap::new();
        for (id, ty) in self.types.iter().enumerate() {
            if !matches!(ty.shape, Shape::Struct(_)) || ty.name_off == 0 {
                continue;
            }
            let name = self.name(ty.name_off)?;
            if !structs.contains_key(name) {
                let id = u32::try_from(id).map_err(|_| malformed("more than 2^32 types"))?;
                structs.insert(name.to_owned(), id);
            }
        }
        self.structs = structs;
        Ok(())
    }

    fn struct_id(&self, name: &str) -> Result<u32, BtfError> {
        self.structs
            .get(name)
            .copied()
            .ok_or_else(|| BtfError::NoStruct(name.to_owned()))
    }

    /// Searches `composite` for `name`, descending into anonymous members in declaration order.
    fn find_member(
        &self,
        composite: &Composite,
        name: &str,
        depth: usize,
    ) -> Result<Option<Found>, BtfError> {
        if depth > MAX_DEPTH {
            return Err(malformed(format!(
                "anonymous members nested deeper than {MAX_DEPTH}"
            )));
        }
        for member in self.members_of(composite)? {
            if member.name_off != 0 {
                if self.name(member.name_off)? == name {
                    return Ok(Some(Found {
                        member: *member,
                        bit_offset: u64::from(member.bit_offset),
                    }));
                }
                continue;
            }
            let Some(inner) = self.composite(member.type_id)? else {
                continue;
            };
            if let Some(found) = self.find_member(inner, name, depth + 1)? {
                return Ok(Some(Found {
                    member: found.member,
                    bit_offset: u64::from(member.bit_offset) + found.bit_offset,
                }));
            }
        }
        Ok(None)
    }

    fn members_of(&self, composite: &Composite) -> Result<&[Member], BtfError> {
        self.members
            .get(composite.members.clone())
            .ok_or_else(|| malformed("member range out of bounds"))
    }

    /// A bitfield or an unaligned member has no byte offset the programs could read at.
    fn check_addressable(
        &self,
        member: &Member,
        struct_name: &str,
        path: &str,
        bits: Bits,
    ) -> Result<(), BtfError> {
        let one_byte = bits == Bits::WholeOrByte && member.bitfield_size == 8;
        if !one_byte && (member.bitfield_size != 0 || self.is_partial_int(member.type_id)?) {
            return Err(BtfError::Bitfield {
                struct_name: struct_name.to_owned(),
                path: path.to_owned(),
            });
        }
        if !member.bit_offset.is_multiple_of(8) {
            return Err(BtfError::Unaligned {
                struct_name: struct_name.to_owned(),
                path: path.to_owned(),
                bit_offset: member.bit_offset,
            });
        }
        Ok(())
    }

    /// Without kind_flag, a bitfield is a member whose INT type covers only part of its bytes.
    fn is_partial_int(&self, type_id: u32) -> Result<bool, BtfError> {
        Ok(match self.resolve(type_id)?.shape {
            Shape::Int {
                size,
                bits,
                bit_offset,
            } => bit_offset != 0 || u64::from(bits) != u64::from(size) * 8,
            _ => false,
        })
    }

    /// The struct or union `type_id` names once typedefs and qualifiers are stripped.
    fn composite(&self, type_id: u32) -> Result<Option<&Composite>, BtfError> {
        Ok(match &self.resolve(type_id)?.shape {
            Shape::Struct(composite) | Shape::Union(composite) => Some(composite),
            _ => None,
        })
    }

    /// Follows typedefs and qualifiers to the type that has the layout.
    fn resolve(&self, mut type_id: u32) -> Result<&Type, BtfError> {
        for _ in 0..MAX_DEPTH {
            let ty = self.type_by_id(type_id)?;
            match ty.shape {
                Shape::Alias { target } => type_id = target,
                _ => return Ok(ty),
            }
        }
        Err(malformed(format!(
            "typedef or qualifier chain longer than {MAX_DEPTH} at type {type_id}"
        )))
    }

    fn type_by_id(&self, type_id: u32) -> Result<&Type, BtfError> {
        usize::try_from(type_id)
            .ok()
            .and_then(|index| self.types.get(index))
            .ok_or_else(|| {
                malformed(format!(
                    "type id {type_id} out of range ({} types)",
                    self.types.len()
                ))
            })
    }

    /// "struct path", "union foo" or "an anonymous union", for error messages.
    fn describe(&self, type_id: u32) -> String {
        let Ok(ty) = self.resolve(type_id) else {
            return format!("type {type_id}");
        };
        let kind = match ty.shape {
            Shape::Union(_) => "union",
            _ => "struct",
        };
        match self.name(ty.name_off) {
            Ok(name) if !name.is_empty() => format!("{kind} {name}"),
            _ => format!("an anonymous {kind}"),
        }
    }

    fn name(&self, offset: u32) -> Result<&str, BtfError> {
        let bad = || malformed(format!("bad string offset {offset}"));
        let start = usize::try_from(offset).map_err(|_| bad())?;
        let tail = self.strings.get(start..).ok_or_else(bad)?;
        let end = tail.iter().position(|&b| b == 0).ok_or_else(bad)?;
        std::str::from_utf8(&tail[..end]).map_err(|_| bad())
    }
}

/// The type and string sections of a BTF blob, located through its header.
struct Sections<'a> {
    types: &'a [u8],
    strings: &'a [u8],
}

impl<'a> Sections<'a> {
    fn locate(bytes: &'a [u8]) -> Result<Sections<'a>, BtfError> {
        let magic = bytes
            .get(..2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]))
            .ok_or_else(|| malformed("shorter than a BTF header"))?;
        if magic != MAGIC {
            return Err(malformed(format!(
                "magic {magic:#06x}, expected {MAGIC:#06x} (not BTF, or another byte order)"
            )));
        }
        let version = bytes.get(2).copied().unwrap_or_default();
        if version != VERSION {
            return Err(malformed(format!("unsupported version {version}")));
        }
        let field = |at: usize| {
            read_u32(bytes, at)
                .map(|v| v as usize)
                .ok_or_else(|| malformed("truncated header"))
        };
        let header_len = field(4)?;
        if header_len < MIN_HEADER_LEN {
            return Err(malformed(format!("header length {header_len} too short")));
        }
        let section = |off_at: usize, len_at: usize, what: &str| {
            let start = header_len.checked_add(field(off_at)?);
            let end = start.and_then(|start| start.checked_add(field(len_at).ok()?));
            start
                .zip(end)
                .and_then(|(start, end)| bytes.get(start..end))
                .ok_or_else(|| malformed(format!("{what} section runs past the end")))
        };
        Ok(Sections {
            types: section(8, 12, "type")?,
            strings: section(16, 20, "string")?,
        })
    }
}

/// Bytes that follow `struct btf_type` for each kind, or None for a kind this reader does not
/// know (and so cannot skip).
fn trailing_len(kind: u32, vlen: usize) -> Option<usize> {
    Some(match kind {
        KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
        | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
        // INT: encoding word; VAR: linkage; DECL_TAG: component_idx.
        KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
        // struct btf_array
        KIND_ARRAY => 12,
        // btf_member, btf_var_secinfo, btf_enum64: three words each.
        KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
        // btf_enum, btf_param: two words each.
        KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
        _ => return None,
    })
}

fn int_shape(size: u32, trailing: &[u8]) -> Shape {
    let encoding = read_u32(trailing, 0).unwrap_or_default();
    Shape::Int {
        size,
        bits: encoding & 0xff,
        bit_offset: (encoding >> 16) & 0xff,
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes([word[0], word[1], word[2], word[3]]))
}

/// Test helpers: a builder of raw BTF blobs, one type at a time, and the running kernel's BTF.
#[cfg(test)]
pub(super) mod testing {
    use super::Btf;

    /// The running kernel's BTF, or None (with a note) on a kernel built without it.
    pub fn vmlinux() -> Option<Btf> {
        if !std::path::Path::new(super::VMLINUX_PATH).exists() {
            eprintln!(
                "{} absent: skipping the test on real BTF",
                super::VMLINUX_PATH
            );
            return None;
        }
        Some(Btf::from_sys_fs().expect("the running kernel's BTF parses"))
    }

    pub struct BtfBuilder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    /// A member: name, type id, bit offset, bitfield size (ignored without kind_flag).
    pub type Field<'a> = (&'a str, u32, u32, u32);

    impl BtfBuilder {
        pub fn new() -> BtfBuilder {
            BtfBuilder {
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }

        pub fn string(&mut self, s: &str) -> u32 {
            if s.is_empty() {
                return 0;
            }
            let offset = self.strings.len() as u32;
            self.strings.extend_from_slice(s.as_bytes());
            self.strings.push(0);
            offset
        }

        /// Appends a type of any kind with `trailing` words after its header; returns its id.
        pub fn raw(
            &mut self,
            kind: u32,
            name: &str,
            vlen: u32,
            kind_flag: bool,
            size_or_type: u32,
            trailing: &[u32],
        ) -> u32 {
            let info = (u32::from(kind_flag) << 31) | (kind << 24) | vlen;
            let name_off = self.string(name);
            for word in [name_off, info, size_or_type].iter().chain(trailing) {
                self.types.extend_from_slice(&word.to_ne_bytes());
            }
            self.next_id += 1;
            self.next_id - 1
        }

        pub fn int(&mut self, name: &str, size: u32) -> u32 {
            self.raw(super::KIND_INT, name, 0, false, size, &[size * 8])
        }

        pub fn int_bits(&mut self, name: &str, size: u32, bits: u32, bit_offset: u32) -> u32 {
            let encoding = (bit_offset << 16) | bits;
            self.raw(super::KIND_INT, name, 0, false, size, &[encoding])
        }

        pub fn ptr(&mut self, target: u32) -> u32 {
            self.raw(super::KIND_PTR, "", 0, false, target, &[])
        }

        pub fn typedef(&mut self, name: &str, target: u32) -> u32 {
            self.raw(super::KIND_TYPEDEF, name, 0, false, target, &[])
        }

        pub fn qualifier(&mut self, kind: u32, target: u32) -> u32 {
            self.raw(kind, "", 0, false, target, &[])
        }

        pub fn fwd(&mut self, name: &str) -> u32 {
            self.raw(super::KIND_FWD, name, 0, false, 0, &[])
        }

        pub fn composite(
            &mut self,
            kind: u32,
            name: &str,
            size: u32,
            kind_flag: bool,
            fields: &[Field],
        ) -> u32 {
            let mut words = Vec::new();
            for &(member, type_id, bit_offset, bitfield_size) in fields {
                let offset = if kind_flag {
                    (bitfield_size << 24) | bit_offset
                } else {
                    bit_offset
                };
                words.extend([self.string(member), type_id, offset]);
            }
            self.raw(kind, name, fields.len() as u32, kind_flag, size, &words)
        }

        /// A plain struct whose members are given by byte offset.
        pub fn plain_struct(&mut self, name: &str, size: u32, members: &[(&str, u32, u32)]) -> u32 {
            let fields: Vec<Field> = members
                .iter()
                .map(|&(member, type_id, byte)| (member, type_id, byte * 8, 0))
                .collect();
            self.composite(super::KIND_STRUCT, name, size, false, &fields)
        }

        pub fn build(&self) -> Vec<u8> {
            let mut blob = Vec::new();
            let header_words = [
                24,
                0,
                self.types.len() as u32,
                self.types.len() as u32,
                self.strings.len() as u32,
            ];
            blob.extend_from_slice(&super::MAGIC.to_ne_bytes());
            blob.extend_from_slice(&[super::VERSION, 0]);
            for word in header_words {
                blob.extend_from_slice(&word.to_ne_bytes());
            }
            blob.extend_from_slice(&self.types);
            blob.extend_from_slice(&self.strings);
            blob
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{BtfBuilder, vmlinux};
    use super::*;

    fn parse(builder: &BtfBuilder) -> Btf {
        Btf::parse(&builder.build()).expect("synthetic BTF parses")
    }

    /// The fuzz target's seeds (`fuzz/seeds/btf`) are valid BTF: fuzzing starts from blobs
    /// the parser accepts, and mutates them from there.
    #[test]
    fn the_fuzz_seeds_parse() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/btf");
        let seeds: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert!(!seeds.is_empty());
        for seed in seeds {
            let path = seed.unwrap().path();
            let btf = Btf::parse(&std::fs::read(&path).unwrap());
            assert!(btf.is_ok(), "{}: {:?}", path.display(), btf.err());
        }
    }

    #[test]
    fn finds_plain_and_nested_members() {
        let mut b = BtfBuilder::new();
        let long = b.int("long", 8);
        let vfsmount = b.fwd("vfsmount");
        let mnt_ptr = b.ptr(vfsmount);
        let path = b.plain_struct("path", 16, &[("mnt", mnt_ptr, 0), ("dentry", long, 8)]);
        b.plain_struct("file", 64, &[("f_mode", long, 4), ("f_path", path, 16)]);
        let btf = parse(&b);
        assert_eq!(btf.member_offset("file", "f_mode").unwrap(), 4);
        assert_eq!(btf.member_offset("file", "f_path").unwrap(), 16);
        assert_eq!(btf.member_offset("file", "f_path.dentry").unwrap(), 24);
        assert_eq!(btf.struct_size("file").unwrap(), 64);
        assert_eq!(btf.struct_size("path").unwrap(), 16);
    }

    #[test]
    fn descends_through_anonymous_unions_and_structs() {
        // struct qstr { union { struct { u32 hash; u32 len; }; u64 hash_len; }; char *name; }
        // embedded at 32 in dentry, itself inside an anonymous union as in Linux 6.18.
        let mut b = BtfBuilder::new();
        let u32_ty = b.int("u32", 4);
        let u64_ty = b.int("u64", 8);
        let char_ptr = b.ptr(0);
        let hash_len = b.plain_struct("", 8, &[("hash", u32_ty, 0), ("len", u32_ty, 4)]);
        let union = b.composite(
            KIND_UNION,
            "",
            8,
            false,
            &[("", hash_len, 0, 0), ("hash_len", u64_ty, 0, 0)],
        );
        let qstr = b.plain_struct("qstr", 16, &[("", union, 0), ("name", char_ptr, 8)]);
        let const_qstr = b.qualifier(KIND_CONST, qstr);
        let names = b.composite(
            KIND_UNION,
            "",
            16,
            false,
            &[("__d_name", qstr, 0, 0), ("d_name", const_qstr, 0, 0)],
        );
        b.plain_struct("dentry", 64, &[("d_flags", u32_ty, 0), ("", names, 32)]);
        let btf = parse(&b);
        assert_eq!(btf.member_offset("qstr", "len").unwrap(), 4);
        assert_eq!(btf.member_offset("qstr", "hash_len").unwrap(), 0);
        assert_eq!(btf.member_offset("qstr", "name").unwrap(), 8);
        assert_eq!(btf.member_offset("dentry", "d_name").unwrap(), 32);
        assert_eq!(btf.member_offset("dentry", "d_name.name").unwrap(), 40);
        assert_eq!(btf.member_offset("dentry", "d_name.len").unwrap(), 36);
    }

    #[test]
    fn follows_typedef_and_qualifier_chains() {
        let mut b = BtfBuilder::new();
        let uint = b.int("unsigned int", 4);
        let kuid = b.plain_struct("", 4, &[("val", uint, 0)]);
        let kuid_t = b.typedef("kuid_t", kuid);
        let tagged = b.raw(KIND_TYPE_TAG, "rcu", 0, false, kuid_t, &[]);
        let volatile = b.qualifier(KIND_VOLATILE, tagged);
        let constant = b.qualifier(KIND_CONST, volatile);
        let alias = b.typedef("kuid_alias_t", constant);
        b.plain_struct("cred", 16, &[("usage", uint, 0), ("uid", alias, 8)]);
        let btf = parse(&b);
        assert_eq!(btf.member_offset("cred", "uid").unwrap(), 8);
        assert_eq!(btf.member_offset("cred", "uid.val").unwrap(), 8);
    }

    #[test]
    fn never_follows_pointers() {
        let mut b = BtfBuilder::new();
        let long = b.int("long", 8);
        let mnt_ns = b.plain_struct("mnt_namespace", 16, &[("inum", long, 8)]);
        let mnt_ns_ptr = b.ptr(mnt_ns);
        b.plain_struct("nsproxy", 16, &[("mnt_ns", mnt_ns_ptr, 8)]);
        let btf = parse(&b);
        let err = btf.member_offset("nsproxy", "mnt_ns.inum").unwrap_err();
        assert!(matches!(err, BtfError::NotComposite { ref prefix, .. } if prefix == "mnt_ns"));
        assert_eq!(
            err.to_string(),
            "cannot look up mnt_ns.inum in struct nsproxy: member mnt_ns is not a struct or \
             union (pointers are not followed)"
        );
    }

    #[test]
    fn a_one_byte_bitfield_on_a_byte_has_a_byte_offset_on_request() {
        let mut b = BtfBuilder::new();
        let uint = b.int("unsigned int", 4);
        b.composite(
            KIND_STRUCT,
            "fs_context",
            16,
            true,
            &[
                ("purpose", uint, 32, 8),
                ("phase", uint, 40, 8),
                ("flags", uint, 48, 4),
            ],
        );
        let btf = parse(&b);
        assert!(matches!(
            btf.member_offset("fs_context", "purpose"),
            Err(BtfError::Bitfield { .. })
        ));
        assert_eq!(btf.byte_member_offset("fs_context", "purpose").unwrap(), 4);
        assert_eq!(btf.byte_member_offset("fs_context", "phase").unwrap(), 5);
        assert!(btf.byte_member_offset("fs_context", "flags").is_err());
    }

    #[test]
    fn kind_flag_struct_offsets_and_bitfields() {
        let mut b = BtfBuilder::new();
        let uint = b.int("unsigned int", 4);
        let long = b.int("long", 8);
        b.composite(
            KIND_STRUCT,
            "task_struct",
            32,
            true,
            &[
                ("flags", uint, 0, 0),
                ("in_execve", uint, 32, 1),
                ("in_iowait", uint, 33, 1),
                ("pid", uint, 64, 0),
                ("odd", uint, 100, 0),
                ("mm", long, 128, 0),
            ],
        );
        let btf = parse(&b);
        assert_eq!(btf.member_offset("task_struct", "pid").unwrap(), 8);
        assert_eq!(btf.member_offset("task_struct", "mm").unwrap(), 16);
        let bitfield = btf.member_offset("task_struct", "in_iowait").unwrap_err();
        assert!(matches!(bitfield, BtfError::Bitfield { .. }), "{bitfield}");
        let unaligned = btf.member_offset("task_struct", "odd").unwrap_err();
        assert!(
            matches!(
                unaligned,
                BtfError::Unaligned {
                    bit_offset: 100,
                    ..
                }
            ),
            "{unaligned}"
        );
    }

    #[test]
    fn rejects_bitfields_encoded_in_the_int_type() {
        let mut b = BtfBuilder::new();
        let three_bits = b.int_bits("unsigned int", 4, 3, 0);
        let uint = b.int("unsigned int", 4);
        b.plain_struct("legacy", 8, &[("flags", three_bits, 0), ("count", uint, 4)]);
        let btf = parse(&b);
        assert_eq!(btf.member_offset("legacy", "count").unwrap(), 4);
        assert!(matches!(
            btf.member_offset("legacy", "flags"),
            Err(BtfError::Bitfield { .. })
        ));
    }

    #[test]
    fn prefers_the_first_struct_over_forward_declarations() {
        let mut b = BtfBuilder::new();
        let long = b.int("long", 8);
        b.fwd("file");
        b.composite(KIND_UNION, "file", 8, false, &[("f_union", long, 0, 0)]);
        b.plain_struct("file", 24, &[("f_mode", long, 16)]);
        b.plain_struct("file", 8, &[("f_mode", long, 0)]);
        let btf = parse(&b);
        assert_eq!(btf.member_offset("file", "f_mode").unwrap(), 16);
        assert_eq!(btf.struct_size("file").unwrap(), 24);
    }

    #[test]
    fn reports_unknown_structs_members_and_paths() {
        let mut b = BtfBuilder::new();
        let long = b.int("long", 8);
        let path = b.plain_struct("path", 16, &[("mnt", long, 0), ("dentry", long, 8)]);
        b.plain_struct("task_struct", 16, &[("pid", long, 0), ("fs_path", path, 0)]);
        let btf = parse(&b);
        assert_eq!(
            btf.member_offset("task_struct", "nsproxy")
                .unwrap_err()
                .to_string(),
            "struct task_struct has no member nsproxy"
        );
        assert_eq!(
            btf.member_offset("task_struct", "fs_path.inode")
                .unwrap_err()
                .to_string(),
            "struct task_struct has no member fs_path.inode (struct path has no member inode)"
        );
        assert_eq!(
            btf.member_offset("nsproxy", "mnt_ns")
                .unwrap_err()
                .to_string(),
            "BTF has no struct nsproxy"
        );
        assert!(matches!(
            btf.member_offset("task_struct", "fs_path..dentry"),
            Err(BtfError::InvalidPath(_))
        ));
        assert!(matches!(
            btf.member_offset("task_struct", ""),
            Err(BtfError::InvalidPath(_))
        ));
        assert!(matches!(
            btf.struct_size("nsproxy"),
            Err(BtfError::NoStruct(_))
        ));
    }

    #[test]
    fn finds_enumerators_of_enum_and_enum64_by_name() {
        let mut b = BtfBuilder::new();
        let (a, minus) = (b.string("READING_A"), b.string("MINUS"));
        b.raw(KIND_ENUM, "e", 2, false, 4, &[a, 2, minus, (-3i32) as u32]);
        let big = b.string("BIG");
        b.raw(KIND_ENUM64, "e64", 1, false, 8, &[big, 7, 1]);
        let btf = Btf::parse(&b.build()).unwrap();
        assert_eq!(btf.enumerator("READING_A"), Some(2));
        assert_eq!(btf.enumerator("MINUS"), Some(-3));
        assert_eq!(btf.enumerator("BIG"), Some((1 << 32) | 7));
        assert_eq!(btf.enumerator("NOPE"), None);
    }

    #[test]
    fn finds_functions_by_name_and_nothing_else() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        let proto = b.raw(KIND_FUNC_PROTO, "", 0, false, int, &[]);
        b.raw(KIND_FUNC, "do_handle_open", 0, false, proto, &[]);
        b.plain_struct("file", 8, &[]);
        let btf = Btf::parse(&b.build()).unwrap();
        assert!(btf.has_function("do_handle_open"));
        assert!(!btf.has_function("file"), "a struct is not a function");
        assert!(!btf.has_function("int"));
        assert!(!btf.has_function("vfs_get_tree"));
    }

    #[test]
    fn the_module_loading_ids_resolve_on_the_running_kernel() {
        let Some(btf) = testing::vmlinux() else {
            return;
        };
        assert!(btf.enumerator("READING_MODULE").is_some());
        assert!(btf.enumerator("LOADING_MODULE").is_some());
    }

    #[test]
    fn skips_every_kind_by_its_own_layout() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        b.ptr(int);
        // btf_array: type, index_type, nelems
        let array = b.raw(KIND_ARRAY, "", 0, false, 0, &[int, int, 4]);
        // two btf_enum entries: name_off, val
        b.raw(KIND_ENUM, "e", 2, false, 4, &[0, 1, 0, 2]);
        b.fwd("later");
        b.typedef("int_t", int);
        b.qualifier(KIND_VOLATILE, int);
        b.qualifier(KIND_CONST, int);
        b.qualifier(KIND_RESTRICT, int);
        // two btf_param entries: name_off, type
        let proto = b.raw(KIND_FUNC_PROTO, "", 2, false, int, &[0, int, 0, int]);
        b.raw(KIND_FUNC, "f", 1, false, proto, &[]);
        // btf_var: linkage
        let var = b.raw(KIND_VAR, "v", 0, false, int, &[1]);
        // one btf_var_secinfo: type, offset, size
        b.raw(KIND_DATASEC, ".data", 1, false, 4, &[var, 0, 4]);
        b.raw(KIND_FLOAT, "double", 0, false, 8, &[]);
        // btf_decl_tag: component_idx
        b.raw(KIND_DECL_TAG, "tag", 0, false, int, &[u32::MAX]);
        b.raw(KIND_TYPE_TAG, "user", 0, false, int, &[]);
        // two btf_enum64 entries: name_off, val_lo32, val_hi32
        b.raw(KIND_ENUM64, "e64", 2, false, 8, &[0, 1, 0, 0, 2, 0]);
        b.plain_struct("last", 24, &[("values", array, 0), ("tail", int, 16)]);
        let btf = parse(&b);
        assert_eq!(btf.member_offset("last", "tail").unwrap(), 16);
        // void and the 18 types above
        assert_eq!(btf.types.len(), 19);
    }

    #[test]
    fn rejects_malformed_blobs() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        b.plain_struct("s", 4, &[("x", int, 0)]);
        let good = b.build();

        let mut swapped = good.clone();
        swapped.swap(0, 1);
        let err = Btf::parse(&swapped).unwrap_err().to_string();
        assert!(err.contains("magic"), "{err}");

        assert!(Btf::parse(&good[..10]).is_err());
        assert!(Btf::parse(&good[..good.len() - 1]).is_err());

        let mut unknown_kind = BtfBuilder::new();
        unknown_kind.raw(31, "", 0, false, 0, &[]);
        let err = Btf::parse(&unknown_kind.build()).unwrap_err().to_string();
        assert_eq!(err, "malformed BTF: type 1: unknown kind 31");

        let mut dangling = BtfBuilder::new();
        dangling.plain_struct("s", 4, &[("x", 99, 0)]);
        let btf = parse(&dangling);
        assert!(matches!(
            btf.member_offset("s", "x.y"),
            Err(BtfError::Malformed(_))
        ));

        let mut looping = BtfBuilder::new();
        let alias = looping.typedef("a", 2);
        looping.typedef("b", alias);
        looping.plain_struct("s", 4, &[("x", alias, 0)]);
        let btf = parse(&looping);
        assert!(matches!(
            btf.member_offset("s", "x.y"),
            Err(BtfError::Malformed(_))
        ));
    }

    #[test]
    fn honours_a_longer_header() {
        let mut b = BtfBuilder::new();
        let int = b.int("int", 4);
        b.plain_struct("s", 8, &[("x", int, 4)]);
        let mut blob = b.build();
        // Grow hdr_len to 32 and insert 8 unknown header bytes: section offsets stay relative.
        blob[4..8].copy_from_slice(&32u32.to_ne_bytes());
        blob.splice(24..24, [0xaa; 8]);
        let btf = Btf::parse(&blob).unwrap();
        assert_eq!(btf.member_offset("s", "x").unwrap(), 4);
    }

    #[test]
    fn reads_the_running_kernels_btf() {
        let Some(btf) = vmlinux() else { return };
        assert_eq!(btf.member_offset("qstr", "name").unwrap(), 8);
        assert_eq!(btf.member_offset("path", "mnt").unwrap(), 0);
        assert_eq!(btf.member_offset("path", "dentry").unwrap(), 8);
        assert_eq!(btf.struct_size("path").unwrap(), 16);
        assert_eq!(btf.member_offset("list_head", "prev").unwrap(), 8);
        let mm_end = btf.struct_size("mm_struct").unwrap();
        assert!(btf.member_offset("mm_struct", "arg_end").unwrap() < mm_end);
        assert!(matches!(
            btf.member_offset("task_struct", "no_such_member"),
            Err(BtfError::NoMember { .. })
        ));
    }
}
