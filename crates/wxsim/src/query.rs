//! Reading query parameters without allocating unless a value is percent-encoded.

use std::borrow::Cow;

/// The first value of `name` in a form-encoded query (`+` is a space), `None` when absent or empty.
// Guess: an empty parameter (`appid=`) counts as missing, and a repeated one takes its first value.
pub(crate) fn param<'q>(query: Option<&'q str>, name: &str) -> Option<Cow<'q, str>> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(key, _)| decode(key) == name)
        .map(|(_, value)| decode(value))
        .filter(|v| !v.is_empty())
}

fn decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex_val(bytes[i + 1]), hex_val(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    Cow::Owned(String::from_utf8_lossy(&out).into_owned())
}

fn hex_val(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_params() {
        let q = Some("appid=wx1&secret=&js_code=a%2Bb+c&x&js_code=second&bad=%zz%4");
        assert_eq!(param(q, "appid").as_deref(), Some("wx1"));
        assert_eq!(param(q, "secret"), None);
        assert_eq!(param(q, "js_code").as_deref(), Some("a+b c"));
        assert_eq!(param(q, "x"), None);
        assert_eq!(param(q, "missing"), None);
        assert_eq!(param(q, "bad").as_deref(), Some("%zz%4"));
        assert_eq!(param(None, "appid"), None);
        assert!(matches!(param(q, "appid"), Some(Cow::Borrowed(_))));
    }
}
