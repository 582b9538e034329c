//! COPY and ADD: sources from the context, another stage, an image, heredocs, or (ADD) a URL or git
//! repository, into a destination resolved against WORKDIR.

use strata_llb::patterns::clean;
use strata_llb::urls::{redact_credentials, redact_text};
use strata_llb::{Chown, CopyAction, FileAction, FileOp, NodeId, NodeMeta, Op, SourceOp};

use super::dispatch::{Lowering, StageState};
use super::stages::{Stage, StageRef, Step};
use crate::error::Error;
use crate::instructions::CopyArgs;
use crate::shell::Lexer;

/// Where the copied files come from.
enum Origin {
    /// A filesystem node (context, stage or image); `None` is an empty stage.
    Tree(Option<NodeId>),
    /// ADD of URLs or git repositories: one source node per source.
    Remote,
}

impl Lowering<'_> {
    /// Lowers COPY (`add = false`) or ADD into a file op over the stage's filesystem (or a merge for `--link`).
    pub(super) fn dispatch_copy(
        &mut self,
        state: &mut StageState,
        stage: &Stage,
        step: &Step,
        copy: &CopyArgs,
        add: bool,
        mut meta: NodeMeta,
    ) -> Result<(), Error> {
        let name = if add { "ADD" } else { "COPY" };
        // URLs may carry credentials; progress and history show them redacted.
        meta.description = redact_text(&meta.description);
        let sources = copy.sources.iter().map(|s| self.expand(step, s, &state.env)).collect::<Result<Vec<_>, _>>()?;
        let remote = sources.iter().filter(|s| is_url(s) || is_git(s)).count();
        if remote > 0 && !add {
            return Err(step.node.error("source can't be a URL for COPY"));
        }
        if copy.checksum.is_some() && (remote == 0 || remote < sources.len()) {
            return Err(step.node.error("checksum requires HTTP(S) or Git sources"));
        }
        let origin = match (&copy.from, remote) {
            (Some(from), _) => Origin::Tree(self.copy_source(state, stage, step, from)?),
            (None, 0) if sources.is_empty() => Origin::Tree(None),
            (None, 0) => Origin::Tree(Some(self.context())),
            (None, _) if remote == sources.len() => Origin::Remote,
            (None, _) => return Err(step.node.error(format!("{name} cannot mix remote and local sources"))),
        };
        let dest_written = self.expand(step, &copy.dest, &state.env)?;
        let dest = destination(&state.cwd(), &dest_written);
        if sources.len() + copy.heredocs.len() > 1 && !dest.ends_with('/') {
            return Err(step.node.error(format!(
                "When using {name} with more than one source file, the destination must be a directory and end with a /"
            )));
        }
        let chmod = match &copy.chmod {
            Some(raw) => Some(chmod(&self.expand(step, raw, &state.env)?).map_err(|e| step.node.error(e))?),
            None => None,
        };
        let chown = match &copy.chown {
            Some(raw) => Some(parse_chown(&self.expand(step, raw, &state.env)?)),
            None => None,
        };
        let exclude = copy.exclude.iter().map(|p| self.expand(step, p, &state.env)).collect::<Result<Vec<_>, _>>()?;
        let template = CopyAction {
            input: None,
            sources: Vec::new(),
            dest: dest.clone(),
            chown,
            chmod: chmod.map(|mode| format!("{mode:o}")),
            parents: copy.parents,
            exclude,
            unpack: add && copy.unpack.unwrap_or(true),
            follow_symlinks: true,
            dir_contents_only: true,
            allow_wildcard: true,
            allow_empty_wildcard: true,
            create_dest_path: true,
        };

        // Input 0 is the stage's filesystem unless --link copies onto an empty tree.
        let mut inputs: Vec<NodeId> = if copy.link { Vec::new() } else { state.root.into_iter().collect() };
        let mut input_of = |node: NodeId| {
            inputs.iter().position(|n| *n == node).unwrap_or_else(|| {
                inputs.push(node);
                inputs.len() - 1
            })
        };
        let mut actions = Vec::new();
        match origin {
            Origin::Tree(node) if !sources.is_empty() => actions.push(FileAction::Copy(CopyAction {
                input: node.map(&mut input_of),
                sources: sources.clone(),
                ..template.clone()
            })),
            Origin::Tree(_) => {}
            Origin::Remote => {
                for source in &sources {
                    let (node, path) = self.remote_source(source, copy, &meta);
                    let input = Some(input_of(node));
                    // Downloaded archives stay archives unless `--unpack=true`, as in BuildKit.
                    let unpack = copy.unpack.unwrap_or(false);
                    actions.push(FileAction::Copy(CopyAction {
                        input,
                        sources: vec![path],
                        unpack,
                        ..template.clone()
                    }));
                }
            }
        }
        for doc in &copy.heredocs {
            let data = if doc.expand {
                // BuildKit expands heredoc bodies with a `\` lexer that leaves quotes alone: `'${v}'` expands.
                let lexer = Lexer { skip_process_quotes: true, ..Lexer::new('\\') };
                lexer.process_word(&doc.content, &state.env).map_err(|e| step.node.error(e.to_string()))?.value
            } else {
                doc.content.clone()
            };
            let path = format!("/{}", doc.name);
            let mkfile = FileAction::Mkfile { path: path.clone(), mode: chmod.unwrap_or(0o644), data, chown: None };
            let file_meta =
                NodeMeta { description: format!("{} (heredoc {})", meta.description, doc.name), ..meta.clone() };
            let file = self.graph.add(Op::File(FileOp { base: None, actions: vec![mkfile] }), Vec::new(), file_meta);
            let input = Some(input_of(file));
            actions.push(FileAction::Copy(CopyAction { input, sources: vec![path], ..template.clone() }));
        }

        let base = (!copy.link && state.root.is_some()).then_some(0);
        let copied = self.graph.add(Op::File(FileOp { base, actions }), inputs, meta.clone());
        let node = match (copy.link, state.root) {
            (true, Some(root)) => self.graph.add(Op::Merge, vec![root, copied], meta),
            _ => copied,
        };
        state.root = Some(node);
        let from = copy.from.as_deref().map(|f| format!("--from={f} ")).unwrap_or_default();
        let written: Vec<&str> =
            copy.sources.iter().map(String::as_str).chain(copy.heredocs.iter().map(|d| d.name.as_str())).collect();
        state.record(redact_text(&format!("{name} {from}{} {dest_written}", written.join(" "))), Some(node));
        Ok(())
    }

    /// The filesystem `--from` names: an earlier stage, a named context or an image. Variables are not allowed there.
    fn copy_source(
        &mut self,
        state: &StageState,
        stage: &Stage,
        step: &Step,
        from: &str,
    ) -> Result<Option<NodeId>, Error> {
        if from.contains('$') {
            return Err(step.node.error(
                "variable expansion is not supported for --from, define a new stage with FROM using ARG from global \
                 scope as a workaround",
            ));
        }
        match self.stages.resolve_from(from) {
            StageRef::Stage(index) if index >= stage.index => Err(step.node.error(format!(
                "cannot copy from stage \"{from}\", it needs to be defined before current stage \"{}\"",
                stage.display_name()
            ))),
            StageRef::Stage(index) => Ok(self.stage_root(index)?),
            StageRef::Image => match self.named_context(from) {
                Some(context) => self.context_root(context, &step.node, &state.platform),
                None => Ok(Some(self.image(&step.node, from, &state.platform)?)),
            },
        }
    }

    /// A source node for an ADD of a URL or git repository, and the path to copy from it.
    fn remote_source(&mut self, source: &str, copy: &CopyArgs, meta: &NodeMeta) -> (NodeId, String) {
        let op = if is_git(source) {
            let (remote, reference) = match source.split_once('#') {
                Some((remote, reference)) => (remote.to_owned(), Some(reference.to_owned())),
                None => (source.to_owned(), None),
            };
            SourceOp::Git { remote, reference, keep_git_dir: copy.keep_git_dir, checksum: copy.checksum.clone() }
        } else {
            let filename = url_file_name(source);
            SourceOp::Http { url: source.to_owned(), checksum: copy.checksum.clone(), filename: Some(filename) }
        };
        let path = match &op {
            SourceOp::Http { filename: Some(name), .. } => format!("/{name}"),
            _ => "/".into(),
        };
        let description = format!("{} ({})", meta.description, redact_credentials(source));
        let meta = NodeMeta { description, ..meta.clone() };
        (self.graph.add(Op::Source(op), Vec::new(), meta), path)
    }
}

/// The destination made absolute against WORKDIR; an empty destination, `.` or a trailing `/` mean a
/// directory, which the trailing `/` of the result records.
fn destination(cwd: &str, written: &str) -> String {
    let absolute = if written.starts_with('/') { clean(written) } else { clean(&format!("{cwd}/{written}")) };
    let is_dir = written.is_empty() || written == "." || written.ends_with('/') || written.ends_with("/.");
    if is_dir && !absolute.ends_with('/') { format!("{absolute}/") } else { absolute }
}

/// `--chmod`: an octal mode up to 07777.
fn chmod(value: &str) -> Result<u32, String> {
    u32::from_str_radix(value, 8)
        .ok()
        .filter(|mode| *mode <= 0o7777)
        .ok_or_else(|| format!("invalid chmod parameter: '{value}'. it should be octal string and between 0 and 07777"))
}

/// `--chown=user[:group]`.
fn parse_chown(value: &str) -> Chown {
    match value.split_once(':') {
        Some((user, group)) => Chown { user: user.to_owned(), group: Some(group.to_owned()) },
        None => Chown { user: value.to_owned(), group: None },
    }
}

fn is_url(source: &str) -> bool {
    source.starts_with("http://") || source.starts_with("https://")
}

/// Git sources as BuildKit recognises them for ADD: `git@host:repo`, `git://`, or a URL whose path ends in `.git`.
fn is_git(source: &str) -> bool {
    let without_ref = source.split('#').next().unwrap_or(source);
    source.starts_with("git@") || source.starts_with("git://") || (is_url(source) && without_ref.ends_with(".git"))
}

/// The file name ADD gives a downloaded URL: the last path segment, or `index.html`.
fn url_file_name(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let after_host = path.splitn(4, '/').nth(3).unwrap_or("");
    after_host.rsplit('/').next().filter(|n| !n.is_empty()).unwrap_or("index.html").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_resolve_against_workdir() {
        assert_eq!(destination("/app", "x"), "/app/x");
        assert_eq!(destination("/app", "."), "/app/");
        assert_eq!(destination("/app", ""), "/app/");
        assert_eq!(destination("/", "sub/"), "/sub/");
        assert_eq!(destination("/app", "/abs/../etc"), "/etc");
        assert_eq!(destination("/", "."), "/");
    }

    #[test]
    fn chmod_is_octal_up_to_07777() {
        assert_eq!(chmod("755"), Ok(0o755));
        assert_eq!(chmod("0644"), Ok(0o644));
        assert_eq!(
            chmod("64a").unwrap_err(),
            "invalid chmod parameter: '64a'. it should be octal string and between 0 and 07777"
        );
        assert!(chmod("10000").is_err());
    }

    #[test]
    fn remote_sources() {
        assert!(is_git("https://github.com/moby/buildkit.git#v0.10"));
        assert!(is_git("git@github.com:moby/buildkit.git"));
        assert!(!is_git("https://example.com/file.tar.gz"));
        assert_eq!(url_file_name("https://example.com/a/file.tar.gz?x=1"), "file.tar.gz");
        assert_eq!(url_file_name("https://example.com/"), "index.html");
    }
}
