//! Static bearer tokens (`--token-auth-file`), upstream's CSV format:
//! `token,user,uid[,"group1,group2,..."]`, one per line; `#` comments and blank lines are
//! skipped.

use super::UserInfo;
use std::collections::HashMap;

#[derive(Debug, Default, Clone)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

impl TokenFile {
    pub fn insert(&mut self, token: impl Into<String>, user: UserInfo) {
        self.tokens.insert(token.into(), user);
    }

    pub fn lookup(&self, token: &str) -> Option<&UserInfo> {
        self.tokens.get(token)
    }

    /// Parse the file's text. Errors name the line.
    pub fn parse(text: &str) -> Result<TokenFile, String> {
        let mut out = TokenFile::default();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 {
                return Err(format!("token file line {}: need at least 3 columns", i + 1));
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                name: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
                ..Default::default()
            };
            out.insert(fields[0].clone(), user);
        }
        Ok(out)
    }
}

/// Split one CSV line, honouring double quotes.
fn split_csv(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_csv() {
        let f = TokenFile::parse("# c\nabc,alice,1,\"dev,ops\"\nxyz,bob,2\n").unwrap();
        let a = f.lookup("abc").unwrap();
        assert_eq!(a.name, "alice");
        assert_eq!(a.groups, vec!["dev", "ops"]);
        assert_eq!(f.lookup("xyz").unwrap().groups.len(), 0);
        assert!(f.lookup("nope").is_none());
        assert!(TokenFile::parse("only,two").is_err());
    }
}
