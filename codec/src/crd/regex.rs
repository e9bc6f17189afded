//! A small RE2-style regular expression matcher for schema `pattern`s and formats.
//!
//! Supports what CRD patterns use: literals, `.`, classes (`[a-z]`, `[^...]`, `\d \w \s`
//! and negations, `[:alpha:]`-style names are not supported), groups `(...)`, `(?:...)`,
//! flags `(?i)`, `(?s)`, `(?m)` (also scoped `(?i:...)`), alternation, `* + ? {n} {n,}
//! {n,m}` (lazy forms accepted; laziness does not change whether a match exists) and
//! the assertions `^ $ \A \z \b \B`. Matching is unanchored search, as Go's
//! `MatchString`. It compiles to an instruction list run by a Pike VM, so matching is
//! linear in the input and never backtracks; the program is capped in size and parsing
//! nests at most [`MAX_NEST`] groups deep, so hostile patterns are rejected, not run.

/// Deepest group nesting accepted.
pub const MAX_NEST: usize = 64;
const MAX_INSTS: usize = 20_000;
const MAX_REPEAT: u32 = 1000;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Assert {
    LineStart,
    LineEnd,
    TextStart,
    TextEnd,
    Word,
    NotWord,
}

#[derive(Debug, Clone, PartialEq)]
struct Class {
    ranges: Vec<(char, char)>,
    negated: bool,
}

impl Class {
    fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|&(a, b)| a <= c && c <= b) != self.negated
    }
}

#[derive(Debug, Clone)]
enum Node {
    Empty,
    Class(Class),
    Cat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, u32, Option<u32>),
    Assert(Assert),
}

#[derive(Debug, Clone)]
enum Inst {
    Class(Class),
    Split(usize, usize),
    Jmp(usize),
    Assert(Assert),
    Match,
}

/// A compiled pattern.
#[derive(Debug, Clone)]
pub struct Regex {
    prog: Vec<Inst>,
}

#[derive(Clone, Copy)]
struct Flags {
    icase: bool,
    dotnl: bool,
    multiline: bool,
}

struct Parser<'a> {
    chars: Vec<char>,
    pos: usize,
    src: &'a str,
}

fn perr(what: &str, frag: &str) -> String {
    format!("error parsing regexp: {what}: `{frag}`")
}

impl Regex {
    /// Compile `pattern`; `Err` carries a Go-like `error parsing regexp: ...` text.
    pub fn new(pattern: &str) -> Result<Regex, String> {
        let mut p = Parser { chars: pattern.chars().collect(), pos: 0, src: pattern };
        let flags = Flags { icase: false, dotnl: false, multiline: false };
        let node = p.alt(flags, 0)?;
        if p.pos < p.chars.len() {
            return Err(perr("unexpected )", pattern));
        }
        let mut prog = Vec::new();
        compile(&node, &mut prog)?;
        prog.push(Inst::Match);
        Ok(Regex { prog })
    }

    /// Whether the pattern matches anywhere in `s`.
    pub fn is_match(&self, s: &str) -> bool {
        let chars: Vec<char> = s.chars().collect();
        let n = self.prog.len();
        let mut clist: Vec<usize> = Vec::new();
        let mut nlist: Vec<usize> = Vec::new();
        let mut seen = vec![usize::MAX; n];
        for i in 0..=chars.len() {
            // Unanchored search: a new thread starts at every position.
            if self.add(&mut clist, &mut seen, 0, i, &chars) {
                return true;
            }
            let Some(&c) = chars.get(i) else { break };
            nlist.clear();
            for &pc in &clist {
                if let Inst::Class(cl) = &self.prog[pc]
                    && cl.matches(c)
                    && self.add(&mut nlist, &mut seen, pc + 1, i + 1, &chars)
                {
                    return true;
                }
            }
            std::mem::swap(&mut clist, &mut nlist);
        }
        false
    }

    /// Follow epsilon edges from `pc` at position `i`; true when `Match` is reached.
    fn add(
        &self,
        list: &mut Vec<usize>,
        seen: &mut [usize],
        pc: usize,
        i: usize,
        s: &[char],
    ) -> bool {
        let mut stack = vec![pc];
        while let Some(pc) = stack.pop() {
            if seen[pc] == i {
                continue;
            }
            seen[pc] = i;
            match &self.prog[pc] {
                Inst::Match => return true,
                Inst::Jmp(t) => stack.push(*t),
                Inst::Split(a, b) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Inst::Assert(a) => {
                    if assert_holds(*a, s, i) {
                        stack.push(pc + 1);
                    }
                }
                Inst::Class(_) => list.push(pc),
            }
        }
        false
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn assert_holds(a: Assert, s: &[char], i: usize) -> bool {
    let before = i.checked_sub(1).and_then(|j| s.get(j)).copied();
    let after = s.get(i).copied();
    match a {
        Assert::TextStart => i == 0,
        Assert::TextEnd => i == s.len(),
        Assert::LineStart => i == 0 || before == Some('\n'),
        Assert::LineEnd => i == s.len() || after == Some('\n'),
        Assert::Word | Assert::NotWord => {
            let edge = before.is_some_and(is_word) != after.is_some_and(is_word);
            edge == (a == Assert::Word)
        }
    }
}

fn compile(node: &Node, prog: &mut Vec<Inst>) -> Result<(), String> {
    if prog.len() > MAX_INSTS {
        return Err("error parsing regexp: expression too large".to_string());
    }
    match node {
        Node::Empty => {}
        Node::Class(c) => prog.push(Inst::Class(c.clone())),
        Node::Assert(a) => prog.push(Inst::Assert(*a)),
        Node::Cat(parts) => {
            for p in parts {
                compile(p, prog)?;
            }
        }
        Node::Alt(alts) => compile_alt(alts, prog)?,
        Node::Repeat(body, min, max) => compile_repeat(body, *min, *max, prog)?,
    }
    Ok(())
}

fn compile_alt(alts: &[Node], prog: &mut Vec<Inst>) -> Result<(), String> {
    let mut jumps = Vec::new();
    for (k, alt) in alts.iter().enumerate() {
        if k + 1 < alts.len() {
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(alt, prog)?;
            jumps.push(prog.len());
            prog.push(Inst::Jmp(0));
            let next = prog.len();
            prog[split] = Inst::Split(split + 1, next);
        } else {
            compile(alt, prog)?;
        }
    }
    let end = prog.len();
    for j in jumps {
        prog[j] = Inst::Jmp(end);
    }
    Ok(())
}

fn compile_repeat(
    body: &Node,
    min: u32,
    max: Option<u32>,
    prog: &mut Vec<Inst>,
) -> Result<(), String> {
    for _ in 0..min {
        compile(body, prog)?;
    }
    match max {
        None => {
            let split = prog.len();
            prog.push(Inst::Split(split + 1, 0));
            compile(body, prog)?;
            prog.push(Inst::Jmp(split));
            let end = prog.len();
            prog[split] = Inst::Split(split + 1, end);
        }
        Some(max) => {
            let mut splits = Vec::new();
            for _ in min..max {
                splits.push(prog.len());
                prog.push(Inst::Split(0, 0));
                compile(body, prog)?;
            }
            let end = prog.len();
            for s in splits {
                prog[s] = Inst::Split(s + 1, end);
            }
        }
    }
    Ok(())
}

fn class(ranges: Vec<(char, char)>, negated: bool) -> Class {
    Class { ranges, negated }
}

fn perl_class(c: char) -> Option<Class> {
    let (ranges, neg): (Vec<(char, char)>, bool) = match c {
        'd' | 'D' => (vec![('0', '9')], c == 'D'),
        'w' | 'W' => (vec![('0', '9'), ('A', 'Z'), ('a', 'z'), ('_', '_')], c == 'W'),
        's' | 'S' => (vec![('\t', '\n'), ('\x0c', '\r'), (' ', ' ')], c == 'S'),
        _ => return None,
    };
    Some(class(ranges, neg))
}

fn fold(mut c: Class) -> Class {
    let mut extra = Vec::new();
    for &(a, b) in &c.ranges {
        let (lo, hi) = (a.max('A'), b.min('Z'));
        if lo <= hi {
            extra.push((lo.to_ascii_lowercase(), hi.to_ascii_lowercase()));
        }
        let (lo, hi) = (a.max('a'), b.min('z'));
        if lo <= hi {
            extra.push((lo.to_ascii_uppercase(), hi.to_ascii_uppercase()));
        }
    }
    c.ranges.extend(extra);
    c
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn alt(&mut self, mut flags: Flags, nest: usize) -> Result<Node, String> {
        if nest > MAX_NEST {
            return Err(perr("expression nests too deeply", self.src));
        }
        let mut alts = vec![self.cat(&mut flags, nest)?];
        while self.peek() == Some('|') {
            self.pos += 1;
            alts.push(self.cat(&mut flags, nest)?);
        }
        Ok(if alts.len() == 1 { alts.pop().unwrap_or(Node::Empty) } else { Node::Alt(alts) })
    }

    fn cat(&mut self, flags: &mut Flags, nest: usize) -> Result<Node, String> {
        let mut parts = Vec::new();
        while let Some(c) = self.peek() {
            if c == '|' || c == ')' {
                break;
            }
            let atom = self.atom(flags, nest)?;
            let atom = self.quantify(atom)?;
            parts.push(atom);
        }
        Ok(Node::Cat(parts))
    }

    fn quantify(&mut self, atom: Node) -> Result<Node, String> {
        let Some(c) = self.peek() else { return Ok(atom) };
        let (min, max) = match c {
            '*' => (0, None),
            '+' => (1, None),
            '?' => (0, Some(1)),
            '{' => match self.braces() {
                Some(r) => r,
                None => return Ok(atom),
            },
            _ => return Ok(atom),
        };
        if c != '{' {
            self.pos += 1;
        }
        if matches!(atom, Node::Empty | Node::Assert(_)) && c != '{' {
            return Err(perr("missing argument to repetition operator", &c.to_string()));
        }
        if self.peek() == Some('?') {
            self.pos += 1;
        }
        if matches!(self.peek(), Some('*' | '+' | '?')) {
            return Err(perr("invalid nested repetition operator", self.src));
        }
        if max.is_some_and(|m| m < min) || min > MAX_REPEAT || max.is_some_and(|m| m > MAX_REPEAT) {
            return Err(perr("invalid repeat count", self.src));
        }
        Ok(Node::Repeat(Box::new(atom), min, max))
    }

    /// `{n}`, `{n,}`, `{n,m}` at the cursor; `None` (a literal `{`) when malformed.
    fn braces(&mut self) -> Option<(u32, Option<u32>)> {
        let rest: String = self.chars[self.pos..].iter().collect();
        let close = rest.find('}')?;
        let body = &rest[1..close];
        let (a, b) = match body.split_once(',') {
            Some((a, "")) => (a.parse().ok()?, None),
            Some((a, b)) => (a.parse().ok()?, Some(b.parse().ok()?)),
            None => {
                let n: u32 = body.parse().ok()?;
                (n, Some(n))
            }
        };
        self.pos += rest[..=close].chars().count();
        Some((a, b))
    }

    fn atom(&mut self, flags: &mut Flags, nest: usize) -> Result<Node, String> {
        let c = self.peek().unwrap_or('\0');
        self.pos += 1;
        let lit = |ch: char, f: &Flags| {
            let cl = class(vec![(ch, ch)], false);
            Node::Class(if f.icase { fold(cl) } else { cl })
        };
        Ok(match c {
            '(' => return self.group(flags, nest),
            '[' => {
                let cl = self.bracket()?;
                Node::Class(if flags.icase { fold(cl) } else { cl })
            }
            '.' if flags.dotnl => Node::Class(class(vec![], true)),
            '.' => Node::Class(class(vec![('\n', '\n')], true)),
            '^' if flags.multiline => Node::Assert(Assert::LineStart),
            '^' => Node::Assert(Assert::TextStart),
            '$' if flags.multiline => Node::Assert(Assert::LineEnd),
            '$' => Node::Assert(Assert::TextEnd),
            '\\' => match self.escape()? {
                Esc::Class(cl) => Node::Class(cl),
                Esc::Char(ch) => lit(ch, flags),
                Esc::Assert(a) => Node::Assert(a),
            },
            '*' | '+' | '?' => {
                return Err(perr("missing argument to repetition operator", &c.to_string()));
            }
            ch => lit(ch, flags),
        })
    }

    fn group(&mut self, flags: &mut Flags, nest: usize) -> Result<Node, String> {
        let mut inner = *flags;
        if self.peek() == Some('?') {
            self.pos += 1;
            if self.peek() == Some('P') || self.peek() == Some('<') {
                // Named capture: skip the name.
                while let Some(c) = self.peek() {
                    self.pos += 1;
                    if c == '>' {
                        break;
                    }
                }
            } else {
                let mut on = true;
                loop {
                    let c = self.peek().ok_or_else(|| perr("missing closing )", self.src))?;
                    self.pos += 1;
                    match c {
                        'i' => inner.icase = on,
                        's' => inner.dotnl = on,
                        'm' => inner.multiline = on,
                        'U' => {}
                        '-' => on = false,
                        ')' => {
                            *flags = inner;
                            return Ok(Node::Empty);
                        }
                        ':' => break,
                        _ => return Err(perr("invalid or unsupported Perl syntax", self.src)),
                    }
                }
            }
        }
        let node = self.alt(inner, nest + 1)?;
        if self.peek() != Some(')') {
            return Err(perr("missing closing )", self.src));
        }
        self.pos += 1;
        Ok(node)
    }

    fn escape(&mut self) -> Result<Esc, String> {
        let c = self.peek().ok_or_else(|| perr("trailing backslash at end of expression", ""))?;
        self.pos += 1;
        if let Some(cl) = perl_class(c) {
            return Ok(Esc::Class(cl));
        }
        Ok(match c {
            'A' => Esc::Assert(Assert::TextStart),
            'z' => Esc::Assert(Assert::TextEnd),
            'b' => Esc::Assert(Assert::Word),
            'B' => Esc::Assert(Assert::NotWord),
            'n' => Esc::Char('\n'),
            't' => Esc::Char('\t'),
            'r' => Esc::Char('\r'),
            'f' => Esc::Char('\x0c'),
            'v' => Esc::Char('\x0b'),
            c if c.is_ascii_punctuation() => Esc::Char(c),
            c => return Err(perr("invalid escape sequence", &format!("\\{c}"))),
        })
    }

    fn bracket(&mut self) -> Result<Class, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.pos += 1;
        }
        let mut ranges = Vec::new();
        let mut negs: Vec<Class> = Vec::new();
        let mut first = true;
        loop {
            let c = self.peek().ok_or_else(|| perr("missing closing ]", self.src))?;
            self.pos += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            let lo = match c {
                '\\' => match self.escape()? {
                    Esc::Class(cl) if cl.negated => {
                        negs.push(cl);
                        continue;
                    }
                    Esc::Class(cl) => {
                        ranges.extend(cl.ranges);
                        continue;
                    }
                    Esc::Char(ch) => ch,
                    Esc::Assert(_) => return Err(perr("invalid escape sequence", self.src)),
                },
                ch => ch,
            };
            if self.peek() == Some('-') && self.chars.get(self.pos + 1).is_some_and(|&n| n != ']') {
                self.pos += 1;
                let hi = self.peek().unwrap_or(lo);
                self.pos += 1;
                let hi = if hi == '\\' {
                    match self.escape()? {
                        Esc::Char(ch) => ch,
                        _ => return Err(perr("invalid character class range", self.src)),
                    }
                } else {
                    hi
                };
                if hi < lo {
                    return Err(perr("invalid character class range", &format!("{lo}-{hi}")));
                }
                ranges.push((lo, hi));
            } else {
                ranges.push((lo, lo));
            }
        }
        // A negated escape inside brackets (`[\D]`): add its complement's ranges.
        for n in negs {
            ranges.extend(complement(&n.ranges));
        }
        Ok(class(ranges, negated))
    }
}

fn complement(ranges: &[(char, char)]) -> Vec<(char, char)> {
    let mut sorted = ranges.to_vec();
    sorted.sort();
    let mut out = Vec::new();
    let mut next = '\0';
    for (a, b) in sorted {
        if a > next
            && let Some(prev) = char::from_u32(a as u32 - 1)
        {
            out.push((next, prev));
        }
        if let Some(n) = char::from_u32(b as u32 + 1) {
            next = next.max(n);
        }
    }
    out.push((next, char::MAX));
    out
}

enum Esc {
    Class(Class),
    Char(char),
    Assert(Assert),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Regex::new(p).unwrap().is_match(s)
    }

    #[test]
    fn common_patterns() {
        assert!(m("^[a-z]+$", "abc"));
        assert!(!m("^[a-z]+$", "aBc"));
        assert!(m("b", "abc"));
        assert!(m("^(foo|bar)-[0-9]{2,3}$", "bar-123"));
        assert!(!m("^(foo|bar)-[0-9]{2,3}$", "bar-1234"));
        assert!(m("(?i)^[a-f]+$", "ABCdef"));
        assert!(m(r"^\d+(\.\d+)?$", "1.25"));
        assert!(!m(r"^\d+(\.\d+)?$", "1."));
        assert!(m(r"^[^\s]+$", "a-b"));
        assert!(!m(r"^[^\s]+$", "a b"));
        assert!(m(r"^[\w.-]*$", "a_b.c-d"));
        assert!(m("^$", ""));
        assert!(m(r"\bword\b", "a word here"));
        assert!(m("^a{0}b$", "b"));
        assert!(m("^(a|)$", ""));
    }

    #[test]
    fn invalid_patterns_are_errors() {
        for p in ["(", "[a-", "*a", "a**", "\\", "[z-a]", "a{3,1}"] {
            assert!(Regex::new(p).is_err(), "{p}");
        }
        assert!(Regex::new(&"(".repeat(100)).is_err());
    }

    #[test]
    fn linear_on_pathological_input() {
        let r = Regex::new("^(a+)+$").unwrap();
        let s = format!("{}b", "a".repeat(5000));
        assert!(!r.is_match(&s));
    }
}
