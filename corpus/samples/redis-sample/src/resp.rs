//! The RESP2 wire format: commands out, replies in.

use std::io::Read;

use crate::types::{ErrorKind, RedisError, RedisResult, Value};

/// `*<argc>\r\n` then `$<len>\r\n<bytes>\r\n` per argument.
pub fn encode_command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One line without its CRLF. Reads byte by byte so that nothing after the
/// reply is consumed: the stream itself is the only buffer.
fn read_line<R: Read>(reader: &mut R) -> RedisResult<Vec<u8>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        reader.read_exact(&mut byte)?;
        if byte[0] == b'\n' && line.last() == Some(&b'\r') {
            line.pop();
            return Ok(line);
        }
        line.push(byte[0]);
    }
}

fn parse_int(text: &[u8]) -> RedisResult<i64> {
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| RedisError::new(ErrorKind::ParseError, "expected an integer"))
}

/// Read one complete reply.
pub fn parse_value<R: Read>(reader: &mut R) -> RedisResult<Value> {
    let line = read_line(reader)?;
    let (kind, rest) = match line.split_first() {
        Some((kind, rest)) => (*kind, rest),
        None => return Err(RedisError::new(ErrorKind::ParseError, "empty reply line")),
    };
    match kind {
        b'+' if rest == b"OK" => Ok(Value::Okay),
        b'+' => Ok(Value::Status(String::from_utf8_lossy(rest).into_owned())),
        b'-' => Err(RedisError::new(
            ErrorKind::ResponseError,
            String::from_utf8_lossy(rest).into_owned(),
        )),
        b':' => Ok(Value::Int(parse_int(rest)?)),
        b'$' => {
            let len = parse_int(rest)?;
            if len < 0 {
                return Ok(Value::Nil);
            }
            let mut data = vec![0u8; len as usize + 2];
            reader.read_exact(&mut data)?;
            data.truncate(len as usize);
            Ok(Value::Data(data))
        }
        b'*' => {
            let count = parse_int(rest)?;
            if count < 0 {
                return Ok(Value::Nil);
            }
            (0..count)
                .map(|_| parse_value(reader))
                .collect::<RedisResult<Vec<_>>>()
                .map(Value::Bulk)
        }
        other => Err(RedisError::new(
            ErrorKind::ParseError,
            format!("unknown reply type {:?}", other as char),
        )),
    }
}
