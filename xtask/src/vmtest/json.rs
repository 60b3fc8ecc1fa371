//! Just enough JSON to read cargo's `--message-format=json` lines, so that xtask needs no JSON
//! crate: objects, arrays, strings (with every escape), and the other literals kept as text.

use anyhow::{Result, bail};

#[derive(Debug, PartialEq)]
pub enum Value {
    Object(Vec<(String, Value)>),
    Array(Vec<Value>),
    String(String),
    /// Numbers, booleans and null, as written: cargo's messages need none of them as values.
    Literal(String),
}

impl Value {
    /// The member `key` of an object; `None` for other values and missing keys.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Object(members) => members
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_array(&self) -> &[Value] {
        match self {
            Value::Array(items) => items,
            _ => &[],
        }
    }

    pub fn is_true(&self) -> bool {
        matches!(self, Value::Literal(literal) if literal == "true")
    }
}

pub fn parse(text: &str) -> Result<Value> {
    let mut parser = Parser {
        text: text.as_bytes(),
        at: 0,
    };
    let value = parser.value()?;
    parser.skip_whitespace();
    if parser.at != parser.text.len() {
        bail!("trailing characters at byte {}", parser.at);
    }
    Ok(value)
}

struct Parser<'a> {
    text: &'a [u8],
    at: usize,
}

impl Parser<'_> {
    fn value(&mut self) -> Result<Value> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.object(),
            Some(b'[') => self.array(),
            Some(b'"') => Ok(Value::String(self.string()?)),
            Some(_) => self.literal(),
            None => bail!("unexpected end of input"),
        }
    }

    fn object(&mut self) -> Result<Value> {
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_whitespace();
            let key = self.string()?;
            self.skip_whitespace();
            self.expect(b':')?;
            members.push((key, self.value()?));
            self.skip_whitespace();
            match self.bump() {
                Some(b',') => continue,
                Some(b'}') => return Ok(Value::Object(members)),
                _ => bail!("expected `,` or `}}` at byte {}", self.at),
            }
        }
    }

    fn array(&mut self) -> Result<Value> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.bump() {
                Some(b',') => continue,
                Some(b']') => return Ok(Value::Array(items)),
                _ => bail!("expected `,` or `]` at byte {}", self.at),
            }
        }
    }

    fn string(&mut self) -> Result<String> {
        self.expect(b'"')?;
        let mut text = String::new();
        loop {
            // Runs of plain characters are copied whole; the input is a &str, so they are UTF-8.
            let start = self.at;
            while self.peek().is_some_and(|b| b != b'"' && b != b'\\') {
                self.at += 1;
            }
            text.push_str(std::str::from_utf8(&self.text[start..self.at])?);
            match self.bump() {
                Some(b'"') => return Ok(text),
                Some(b'\\') => text.push(self.escape()?),
                _ => bail!("unterminated string"),
            }
        }
    }

    fn escape(&mut self) -> Result<char> {
        Ok(match self.bump() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let unit = self.hex4()?;
                if (0xd800..0xdc00).contains(&unit) {
                    // A character outside the BMP comes as a surrogate pair.
                    self.expect(b'\\')?;
                    self.expect(b'u')?;
                    let low = self.hex4()?;
                    let code = 0x10000 + ((unit - 0xd800) << 10) + (low.wrapping_sub(0xdc00));
                    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                } else {
                    char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER)
                }
            }
            _ => bail!("bad escape at byte {}", self.at),
        })
    }

    fn hex4(&mut self) -> Result<u32> {
        let digits = self
            .text
            .get(self.at..self.at + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u32::from_str_radix(digits, 16).ok());
        match digits {
            Some(unit) => {
                self.at += 4;
                Ok(unit)
            }
            None => bail!("bad \\u escape at byte {}", self.at),
        }
    }

    fn literal(&mut self) -> Result<Value> {
        let start = self.at;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        {
            self.at += 1;
        }
        if start == self.at {
            bail!("unexpected character at byte {start}");
        }
        Ok(Value::Literal(
            String::from_utf8_lossy(&self.text[start..self.at]).into_owned(),
        ))
    }

    fn expect(&mut self, byte: u8) -> Result<()> {
        if self.bump() != Some(byte) {
            bail!("expected `{}` at byte {}", byte as char, self.at);
        }
        Ok(())
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.at += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.at).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_cargo_artifact_message() {
        let line = r#"{"reason":"compiler-artifact","target":{"kind":["test"],"name":"harness","test":true},"profile":{"opt_level":"3","debuginfo":0,"test":true},"features":[],"executable":"/w/target/release/deps/harness-1a2b","fresh":false}"#;
        let message = parse(line).unwrap();
        assert_eq!(
            message.get("reason").and_then(Value::as_str),
            Some("compiler-artifact")
        );
        let target = message.get("target").unwrap();
        assert_eq!(
            target.get("kind").unwrap().as_array(),
            [Value::String("test".into())]
        );
        assert!(
            message
                .get("profile")
                .unwrap()
                .get("test")
                .unwrap()
                .is_true()
        );
        assert_eq!(
            message.get("executable").and_then(Value::as_str),
            Some("/w/target/release/deps/harness-1a2b")
        );
        assert_eq!(message.get("features").unwrap().as_array(), []);
        assert!(message.get("missing").is_none());
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(
            parse(r#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#).unwrap(),
            Value::String("a\"b\\c/d\né😀".into())
        );
    }

    #[test]
    fn keeps_literals_as_text() {
        assert_eq!(
            parse("[null, -1.5e3, false]").unwrap(),
            Value::Array(vec![
                Value::Literal("null".into()),
                Value::Literal("-1.5e3".into()),
                Value::Literal("false".into()),
            ])
        );
    }

    #[test]
    fn refuses_broken_input() {
        for broken in [r#"{"a":1"#, r#"{"a" 1}"#, r#""open"#, "[1,]", "{} x", ""] {
            assert!(parse(broken).is_err(), "{broken:?} parsed");
        }
    }
}
