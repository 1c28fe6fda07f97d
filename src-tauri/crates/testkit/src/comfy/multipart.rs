//! The form fields of a request body, as aiohttp's `request.post()` reads them: `multipart/form-data` parts (files
//! and text) or `application/x-www-form-urlencoded` pairs.

/// One form field. `filename` is set for a file part; a text field has none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    pub name: String,
    pub filename: Option<String>,
    pub data: Vec<u8>,
}

impl Field {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// The fields of a body with this `Content-Type`; `None` for a malformed multipart body (aiohttp raises). Any other
/// content type has no fields.
pub(crate) fn fields(content_type: Option<&str>, body: &[u8]) -> Option<Vec<Field>> {
    let content_type = content_type.unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "multipart/form-data" => multipart(body, &parameter(content_type, "boundary")?),
        "application/x-www-form-urlencoded" => Some(
            form_urlencoded::parse(body)
                .map(|(name, value)| Field {
                    name: name.into_owned(),
                    filename: None,
                    data: value.into_owned().into_bytes(),
                })
                .collect(),
        ),
        _ => Some(Vec::new()),
    }
}

/// `name=value` or `name="value"` among the `;`-separated parameters of a header value.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|part| {
        let (key, value) = part.split_once('=')?;
        if !key.trim().eq_ignore_ascii_case(name) {
            return None;
        }
        let value = value.trim();
        Some(
            match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
                Some(quoted) => quoted.replace("\\\"", "\"").replace("\\\\", "\\"),
                None => value.to_string(),
            },
        )
    })
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

fn multipart(body: &[u8], boundary: &str) -> Option<Vec<Field>> {
    let delimiter = format!("--{boundary}");
    let next_part = format!("\r\n--{boundary}");
    let mut at = find(body, delimiter.as_bytes(), 0)? + delimiter.len();
    let mut fields = Vec::new();
    loop {
        let rest = body.get(at..)?;
        if rest.starts_with(b"--") {
            return Some(fields);
        }
        let head_start = at + find(rest, b"\r\n", 0)? + 2;
        let head_end = find(body, b"\r\n\r\n", head_start)?;
        let head = String::from_utf8_lossy(&body[head_start..head_end]);
        let data_start = head_end + 4;
        let data_end = find(body, next_part.as_bytes(), data_start)?;
        let disposition = head.split("\r\n").find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-disposition")
                .then(|| value.trim().to_string())
        });
        if let Some(disposition) = disposition {
            if let Some(name) = parameter(&disposition, "name") {
                fields.push(Field {
                    name,
                    filename: parameter(&disposition, "filename"),
                    data: body[data_start..data_end].to_vec(),
                });
            }
        }
        at = data_end + next_part.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_reads_files_and_text_fields() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a b.png\"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--x\r\n--XyZ\r\nContent-Disposition: form-data; name=\"subfolder\"\r\n\r\npeer\r\n--XyZ--\r\n";
        let fields = fields(Some("multipart/form-data; boundary=XyZ"), body).expect("parsed");
        assert_eq!(
            fields,
            [
                Field {
                    name: "image".into(),
                    filename: Some("a b.png".into()),
                    data: b"\x89PNG\r\n--x".to_vec()
                },
                Field {
                    name: "subfolder".into(),
                    filename: None,
                    data: b"peer".to_vec()
                }
            ]
        );
        assert_eq!(
            super::fields(
                Some("multipart/form-data; boundary=\"XyZ\""),
                b"--XyZ\r\nbroken"
            ),
            None
        );
        assert_eq!(super::fields(None, b"whatever"), Some(Vec::new()));
        let form = super::fields(
            Some("application/x-www-form-urlencoded"),
            b"image=x&type=temp",
        )
        .expect("parsed");
        assert_eq!(form[1].text(), "temp");
        assert_eq!(form[0].filename, None);
    }
}
