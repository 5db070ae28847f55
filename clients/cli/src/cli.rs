//! The command-line grammar of `omnipanel` (clap derive). Kept apart from
//! the code that runs commands so completions and man pages can be generated
//! from it alone.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Command-line client for the OmniPanel agent.
///
/// Exit codes: 0 success, 1 failure, 2 usage error, 3 the agent is not
/// running, 141 the reader of the output went away (`| head`).
#[derive(Debug, Parser)]
#[command(name = "omnipanel", version, propagate_version = true)]
pub struct Cli {
    /// Print machine-readable JSON (proto3 JSON mapping) instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the agent's version, process and locations.
    Status,
    /// Show events from the agent's event bus.
    Events(EventsArgs),
    /// Show the agent's log (or another log source).
    Logs(LogsArgs),
    /// Read or change settings (config.toml).
    #[command(subcommand)]
    Settings(SettingsCommand),
    /// Manage bearer tokens for the TCP listener.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Control the agent process.
    #[command(subcommand)]
    Agent(AgentCommand),
    /// List crash reports written by the agent.
    Crashes,
    /// Supervise the local Ollama server.
    #[command(subcommand)]
    Ollama(OllamaCommand),
    /// Manage models: list, pull, load, delete, fit checks, providers.
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Chat with a model interactively (one message per line when stdin is
    /// not a terminal).
    Chat(ChatArgs),
    /// Manage projects: the folders whose files the agent serves.
    #[command(subcommand)]
    Projects(ProjectsCommand),
    /// Work with the files of an open project (by default the one
    /// containing the current directory).
    Files(FilesArgs),
    /// Git on an open project (by default the one containing the current
    /// directory).
    Git(GitArgs),
    /// Show what the machine is doing: CPU, memory, disks, network, GPUs,
    /// the agent and Ollama (`sys top` for a live view).
    Sys(SysArgs),
    /// Alerts raised when the machine crosses a threshold, and the
    /// thresholds themselves.
    #[command(subcommand)]
    Alerts(AlertsCommand),
    /// Open the popup panel (or bring the open one to the front).
    Panel(PanelArgs),
    /// Start OmniPanel at login (the tray, or the agent without one).
    Autostart {
        /// on, off, or status (the default).
        #[arg(value_enum, default_value_t = AutostartAction::Status)]
        action: AutostartAction,
    },
    /// Check for, download, install or roll back OmniPanel updates.
    #[command(subcommand)]
    Update(UpdateCommand),
    /// Write an archive to attach to a bug report: versions, OS, redacted
    /// settings, recent logs and crash reports.
    Bugreport {
        /// Where to write the archive (default: the current directory).
        #[arg(long, short)]
        output: Option<std::path::PathBuf>,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Write man pages (omnipanel.1 and one per subcommand) into a folder;
    /// used when packaging.
    #[command(hide = true)]
    Manpages {
        /// Where to write them.
        dir: std::path::PathBuf,
    },
}

/// `omnipanel panel`
#[derive(Debug, Args)]
pub struct PanelArgs {
    /// The tab to show.
    #[arg(long, value_parser = ["overview", "models", "projects", "alerts", "logs", "setup"])]
    pub tab: Option<String>,
    /// Show the first-run setup.
    #[arg(long)]
    pub setup: bool,
    /// Do not start the agent when none is running.
    #[arg(long)]
    pub no_start_agent: bool,
}

/// `omnipanel autostart ...`
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AutostartAction {
    /// Register OmniPanel to start at login.
    On,
    /// Remove the registration.
    Off,
    /// Show whether it is registered (read from the real file).
    Status,
}

/// `omnipanel update ...`
#[derive(Debug, Subcommand)]
pub enum UpdateCommand {
    /// Ask the update server whether a newer version exists.
    Check,
    /// Download and verify the newest version (resumes an interrupted
    /// download).
    Download,
    /// Install the downloaded version and restart the agent.
    Install {
        /// Install even while a model pull runs or a model is loaded.
        #[arg(long)]
        force: bool,
    },
    /// Go back to the version the last install replaced.
    Rollback,
    /// Show versions, the download, and the update history.
    Status,
}

/// `omnipanel events`
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep following new events (reconnecting if the agent restarts).
    #[arg(long, short)]
    pub follow: bool,
    /// Replay events after this sequence number (default: all the agent
    /// still holds).
    #[arg(long)]
    pub after: Option<u64>,
    /// Only events of these topics (repeatable), e.g. agent, settings.
    #[arg(long = "topic")]
    pub topics: Vec<String>,
}

/// `omnipanel logs`
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new lines.
    #[arg(long, short)]
    pub follow: bool,
    /// How many of the last lines to print.
    #[arg(short = 'n', long = "lines", default_value_t = 100)]
    pub lines: u32,
    /// Log source, e.g. agent or ollama.
    #[arg(long, default_value = "agent")]
    pub source: String,
}

/// `omnipanel settings ...`
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show settings (all, or the keys given).
    Get {
        /// Dotted keys, e.g. log.filter.
        keys: Vec<String>,
    },
    /// Change a setting; plain text is accepted for string values.
    Set {
        /// Dotted key, e.g. log.filter.
        key: String,
        /// New value, e.g. debug or 127.0.0.1:7457.
        value: String,
    },
    /// Remove a setting from config.toml so its default applies.
    Reset {
        /// Dotted key.
        key: String,
    },
}

/// Token scopes.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ScopeArg {
    /// Read-only calls.
    Read,
    /// Read and change state.
    Write,
    /// Everything, including shutdown, settings and tokens.
    Admin,
}

/// `omnipanel token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// Access level.
        #[arg(long, value_enum)]
        scope: ScopeArg,
        /// A unique label, e.g. "vscode-laptop".
        #[arg(long)]
        name: Option<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or name.
    Revoke {
        /// Token id or name.
        id: String,
    },
}

/// `omnipanel agent ...`
#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Stop the agent gracefully and wait until it is gone.
    Stop,
}

/// `omnipanel ollama ...`
#[derive(Debug, Subcommand)]
pub enum OllamaCommand {
    /// Show the local Ollama server's state, version, process and address.
    Status,
    /// Start the local server (nothing happens when it already runs).
    Start,
    /// Stop the local server if OmniPanel started it.
    Stop,
    /// Stop (if running) and start the local server.
    Restart,
    /// Show the Ollama server's log.
    Logs {
        /// Keep printing new lines.
        #[arg(long, short)]
        follow: bool,
        /// How many of the last lines to print.
        #[arg(short = 'n', long = "lines", default_value_t = 100)]
        lines: u32,
    },
}

/// `--provider`, shared by the model commands.
#[derive(Debug, Args)]
pub struct ProviderArg {
    /// Ollama endpoint to use (see `omnipanel models providers`); default
    /// "local".
    #[arg(long)]
    pub provider: Option<String>,
}

impl ProviderArg {
    /// The provider for a request; "" asks the agent for "local".
    pub fn name(self) -> String {
        self.provider.unwrap_or_default()
    }
}

/// `omnipanel models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// List installed models; `*` marks the default.
    #[command(visible_alias = "list")]
    Ls {
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Show a model's details, template, parameters and license.
    Show {
        /// Model name, e.g. llama3.2:1b.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Download a model with a progress bar. Ctrl-C detaches: the pull
    /// continues in the agent.
    Pull {
        /// Model name, e.g. llama3.2:1b.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
        /// Allow insecure connections to the registry.
        #[arg(long)]
        insecure: bool,
    },
    /// Delete an installed model.
    #[command(visible_alias = "delete")]
    Rm {
        /// Model name.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// List the models loaded in memory.
    Ps {
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Load a model into memory ahead of use.
    Load {
        /// Model name.
        name: String,
        /// How long to keep it loaded, e.g. 10m, 1h, or -1 for ever
        /// (default: Ollama's).
        #[arg(long, allow_hyphen_values = true)]
        keep_alive: Option<String>,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Free the memory a loaded model holds.
    Unload {
        /// Model name.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// Show or set the model chat uses when none is named.
    Default {
        /// New default model; without it the current one is printed.
        #[arg(conflicts_with = "clear")]
        name: Option<String>,
        /// Clear the default.
        #[arg(long)]
        clear: bool,
    },
    /// Check whether a model fits this machine's GPU memory, RAM and disk.
    Fit {
        /// Model name (installed, or looked up in the registry).
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// List running and recently finished pulls.
    Pulls,
    /// Stop a running pull.
    Cancel {
        /// Model name.
        name: String,
        #[command(flatten)]
        provider: ProviderArg,
    },
    /// List the Ollama endpoints OmniPanel knows.
    Providers,
    /// Add or remove an Ollama endpoint.
    #[command(subcommand)]
    Provider(ProviderCommand),
}

/// `omnipanel models provider ...`
#[derive(Debug, Subcommand)]
pub enum ProviderCommand {
    /// Register a further Ollama endpoint (it must answer).
    Add {
        /// Unique name: letters, digits, '-' and '_'.
        name: String,
        /// Base URL, e.g. http://gpu-box:11434.
        url: String,
        /// Bearer token to send to it.
        #[arg(long)]
        token: Option<String>,
    },
    /// Forget a provider ("local" cannot be removed).
    #[command(visible_alias = "remove")]
    Rm {
        /// Provider name.
        name: String,
    },
}

/// `omnipanel chat`
#[derive(Debug, Args)]
pub struct ChatArgs {
    /// Model to chat with (default: the default model, see `omnipanel models
    /// default`).
    pub model: Option<String>,
    #[command(flatten)]
    pub provider: ProviderArg,
    /// System prompt that starts the conversation.
    #[arg(long)]
    pub system: Option<String>,
}

/// `omnipanel projects ...`
#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects, most recently opened first.
    #[command(visible_alias = "list")]
    Ls,
    /// Open an existing folder as a project (or re-open a known one).
    Open {
        /// The folder.
        #[arg(default_value = ".")]
        path: String,
        /// Display name for a new entry (default: the folder name).
        #[arg(long)]
        name: Option<String>,
    },
    /// Create a new folder (it may exist if empty) and open it as a project.
    Create {
        /// The folder to create.
        path: String,
        /// Display name (default: the folder name).
        #[arg(long)]
        name: Option<String>,
        /// Run `git init` in it.
        #[arg(long)]
        git: bool,
        /// Put a file in it, e.g. `--file README.md=./template.md`
        /// (repeatable): the path inside the project, `=`, a local file.
        #[arg(long = "file", value_name = "REL=LOCALFILE")]
        files: Vec<String>,
    },
    /// Stop serving a project's files; it stays in the list.
    Close {
        /// Project id or path.
        project: String,
    },
    /// Remove a project from the list; its files are not touched.
    Forget {
        /// Project id or path.
        project: String,
    },
    /// Show a project's details.
    Show {
        /// Project id or path.
        project: String,
    },
}

/// `omnipanel files ...`
#[derive(Debug, Args)]
pub struct FilesArgs {
    /// Project id or path (default: the open project containing the
    /// current directory).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: FilesCommand,
}

/// Orders for `omnipanel files ls`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SortArg {
    /// Folders first, then by name.
    Name,
    /// Newest first.
    Modified,
    /// Largest first.
    Size,
}

/// What `omnipanel files cp` does with existing targets.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum OverwriteArg {
    /// Replace existing files; folders are merged.
    Replace,
    /// Keep existing files.
    Skip,
}

/// `omnipanel files ...`. Paths are relative to the project root; one
/// that is absolute or starts with ./ or ../ is taken from the current
/// directory instead.
#[derive(Debug, Subcommand)]
pub enum FilesCommand {
    /// List a folder (default: the project root).
    #[command(visible_alias = "list")]
    Ls {
        /// The folder.
        path: Option<String>,
        /// Include names starting with a dot.
        #[arg(short = 'a', long)]
        all: bool,
        /// Include entries ignored by .gitignore.
        #[arg(long)]
        ignored: bool,
        /// Order of the entries.
        #[arg(long, value_enum, default_value = "name")]
        sort: SortArg,
        /// Reverse the order.
        #[arg(short = 'r', long)]
        reverse: bool,
    },
    /// Print a file's contents (raw bytes).
    Cat {
        /// The file.
        path: String,
        /// First byte to print.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Bytes to print (default: to the end).
        #[arg(long)]
        length: Option<u64>,
        /// Print a binary file to a terminal anyway.
        #[arg(long)]
        force: bool,
    },
    /// Replace a file with what stdin holds, atomically; prints the new
    /// version.
    Write {
        /// The file.
        path: String,
        /// Refuse unless the file is at this version (from `files stat` or
        /// an earlier write): no lost updates.
        #[arg(long, conflicts_with = "create_only")]
        expected_version: Option<String>,
        /// Refuse if the file exists.
        #[arg(long)]
        create_only: bool,
        /// Create missing parent folders.
        #[arg(long)]
        parents: bool,
    },
    /// Create a folder and its parents.
    Mkdir {
        /// The folder.
        path: String,
    },
    /// Rename or move a file or folder.
    Mv {
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// Replace an existing target.
        #[arg(long)]
        overwrite: bool,
    },
    /// Copy a file or folder (recursively).
    Cp {
        /// Source.
        from: String,
        /// Target.
        to: String,
        /// What to do with existing targets (default: fail).
        #[arg(long, value_enum)]
        overwrite: Option<OverwriteArg>,
    },
    /// Move a file or folder to the trash (or delete it for good).
    Rm {
        /// The path.
        path: String,
        /// Delete for good instead of moving to the trash.
        #[arg(long)]
        permanent: bool,
        /// Delete a folder that is not empty, with its contents.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// Describe a file or folder (a symlink itself, not its target).
    Stat {
        /// The path.
        path: String,
    },
    /// Find files by fuzzy name, e.g. `agmain` for agent/src/main.rs; best
    /// first.
    Find {
        /// The query; empty lists files.
        query: String,
        /// Most matches to print (at most 1000).
        #[arg(short = 'n', long, default_value_t = 50)]
        limit: u32,
    },
    /// Search file contents, printing `path:line:text` like ripgrep. Exits
    /// with 1 when nothing matched.
    Grep(GrepArgs),
    /// Print changes to the project's files as they happen (Ctrl-C stops).
    Watch {
        /// First replay the changes after this sequence number.
        #[arg(long)]
        after: Option<u64>,
    },
}

/// `omnipanel files grep`
#[derive(Debug, Args)]
pub struct GrepArgs {
    /// What to look for (literal text unless --regex).
    pub pattern: String,
    /// Treat the pattern as a regular expression.
    #[arg(short = 'e', long)]
    pub regex: bool,
    /// Ignore case (default: smart case, insensitive unless the pattern
    /// has an upper-case letter).
    #[arg(short = 'i', long, overrides_with = "case_sensitive")]
    pub ignore_case: bool,
    /// Match case exactly.
    #[arg(short = 's', long, overrides_with = "ignore_case")]
    pub case_sensitive: bool,
    /// Match whole words only.
    #[arg(short = 'w', long)]
    pub word_regexp: bool,
    /// Only files matching this glob, e.g. '*.rs' (repeatable).
    #[arg(short = 'g', long = "glob", value_name = "GLOB")]
    pub globs: Vec<String>,
    /// Skip files matching this glob (repeatable).
    #[arg(long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,
    /// Lines of context before and after each match (at most 20).
    #[arg(short = 'C', long = "context", value_name = "N")]
    pub context: Option<u32>,
    /// Lines of context after each match (overrides -C).
    #[arg(short = 'A', long = "after-context", value_name = "N")]
    pub after: Option<u32>,
    /// Lines of context before each match (overrides -C).
    #[arg(short = 'B', long = "before-context", value_name = "N")]
    pub before: Option<u32>,
    /// Stop after this many matching lines in all (default 1000).
    #[arg(short = 'm', long = "max-count", value_name = "MAX")]
    pub max: Option<u64>,
    /// Search hidden files too.
    #[arg(long)]
    pub hidden: bool,
    /// Search files ignored by .gitignore too.
    #[arg(long)]
    pub no_ignore: bool,
}

/// `omnipanel sys`
#[derive(Debug, Args)]
pub struct SysArgs {
    /// Without a subcommand: one snapshot.
    #[command(subcommand)]
    pub command: Option<SysCommand>,
}

/// Process orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProcessSortArg {
    /// Highest CPU use first.
    Cpu,
    /// Largest resident memory first.
    Memory,
}

/// `omnipanel sys ...`
#[derive(Debug, Subcommand)]
pub enum SysCommand {
    /// A live view refreshing in place; q or Ctrl-C quits, c and m sort
    /// processes by CPU or memory.
    Top(TopArgs),
    /// List the busiest processes.
    Ps {
        /// Order.
        #[arg(long, value_enum, default_value = "cpu")]
        sort: ProcessSortArg,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 10)]
        limit: u32,
    },
}

/// `omnipanel sys top`
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Time between refreshes, e.g. 1s or 500ms (at least 250ms).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Order of the process list.
    #[arg(long, value_enum, default_value = "cpu")]
    pub sort: ProcessSortArg,
    /// Processes shown (default: as many as fit the terminal).
    #[arg(short = 'n', long)]
    pub processes: Option<u32>,
    /// Stop after this many refreshes (default: until q or Ctrl-C).
    #[arg(long)]
    pub count: Option<u64>,
}

/// `omnipanel alerts ...`
#[derive(Debug, Subcommand)]
pub enum AlertsCommand {
    /// List alerts, newest first.
    #[command(visible_alias = "list")]
    Ls {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Only alerts older than this id (to page back).
        #[arg(long)]
        before: Option<i64>,
        /// Only alerts still active.
        #[arg(long)]
        active: bool,
    },
    /// Print alerts as they are raised and cleared (the active ones first).
    Watch,
    /// Show or change the alert thresholds.
    Thresholds(ThresholdsArgs),
}

/// `omnipanel alerts thresholds`
#[derive(Debug, Args)]
pub struct ThresholdsArgs {
    /// Without a subcommand: list them, with the metrics they can watch.
    #[command(subcommand)]
    pub command: Option<ThresholdsCommand>,
}

/// `omnipanel alerts thresholds ...`
#[derive(Debug, Subcommand)]
pub enum ThresholdsCommand {
    /// Add a threshold, or replace the one on the same metric and
    /// direction. Quote `>` and `<` for the shell, or write above/below:
    /// `omnipanel alerts thresholds set memory.used_percent above 90 --for 30s`.
    Set {
        /// Metric, e.g. memory.used_percent (see `omnipanel alerts thresholds`).
        metric: String,
        /// `>` / above, or `<` / below.
        op: String,
        /// The limit, e.g. 90, 90%, 8GB.
        value: String,
        /// How long the value must stay past the limit, e.g. 30s, 2m.
        #[arg(long = "for", default_value = "0s", value_parser = humantime::parse_duration)]
        hold: std::time::Duration,
        /// For an "above" threshold: the alert clears once the value is at
        /// or below this (default: 5 units under the limit).
        #[arg(long, conflicts_with = "clear_above")]
        clear_below: Option<String>,
        /// For a "below" threshold: the alert clears once the value is at
        /// or above this (default: 5 units over the limit).
        #[arg(long)]
        clear_above: Option<String>,
    },
    /// Remove the thresholds on a metric (only one direction when OP is
    /// given).
    #[command(visible_alias = "remove")]
    Rm {
        /// Metric.
        metric: String,
        /// `>` / above, or `<` / below.
        op: Option<String>,
    },
    /// Go back to the built-in thresholds.
    Reset,
}

/// `omnipanel git`
#[derive(Debug, Args)]
pub struct GitArgs {
    /// Project id or path (default: the open project containing the
    /// current directory).
    #[arg(long, global = true)]
    pub project: Option<String>,
    /// What to do.
    #[command(subcommand)]
    pub command: GitCommand,
}

/// `omnipanel git ...`
#[derive(Debug, Subcommand)]
pub enum GitCommand {
    /// Branch, upstream, staged/unstaged/untracked/conflicted files.
    #[command(visible_alias = "st")]
    Status,
    /// List branches; create or delete one.
    #[command(visible_alias = "branch")]
    Branches {
        /// Include remote-tracking branches.
        #[arg(short, long)]
        all: bool,
        /// Create a branch with this name (from HEAD, or --from).
        #[arg(short, long, value_name = "NAME", conflicts_with = "delete")]
        create: Option<String>,
        /// Where the new branch starts (branch, tag or commit).
        #[arg(long, value_name = "REF", requires = "create")]
        from: Option<String>,
        /// Delete the branch with this name (refused when not merged).
        #[arg(short, long, value_name = "NAME")]
        delete: Option<String>,
        /// Delete even when not merged.
        #[arg(long, requires = "delete")]
        force: bool,
    },
    /// Switch to a branch, tag or commit (refused when it would overwrite
    /// uncommitted changes).
    Switch {
        /// Branch, tag or commit.
        target: String,
        /// Create the branch first (from HEAD, or --from).
        #[arg(short, long)]
        create: bool,
        /// Where the new branch starts.
        #[arg(long, value_name = "REF", requires = "create")]
        from: Option<String>,
    },
    /// Commits, newest first.
    Log {
        /// Where to start (default HEAD).
        start: Option<String>,
        /// How many.
        #[arg(short = 'n', long, default_value_t = 20)]
        limit: u32,
        /// Only commits touching this path.
        #[arg(long)]
        path: Option<String>,
        /// Continue after an earlier page (the token it printed).
        #[arg(long)]
        page: Option<String>,
    },
    /// Unstaged changes (or --staged, --head, or between two commits).
    Diff {
        /// Older commit (with TO: compare two commits).
        from: Option<String>,
        /// Newer commit.
        #[arg(requires = "from")]
        to: Option<String>,
        /// Staged changes (index against HEAD).
        #[arg(long, visible_alias = "cached", conflicts_with_all = ["head", "from"])]
        staged: bool,
        /// All uncommitted changes (working tree against HEAD).
        #[arg(long, conflicts_with = "from")]
        head: bool,
        /// Per-file summary instead of the patch.
        #[arg(long)]
        stat: bool,
        /// Context lines.
        #[arg(short = 'U', long, default_value_t = 3)]
        context: u32,
        /// Largest patch to fetch, in bytes (the agent marks it truncated).
        #[arg(long, default_value_t = 4 * 1024 * 1024)]
        max_bytes: u64,
        /// Limit to these paths.
        #[arg(last = true)]
        paths: Vec<String>,
    },
    /// Stage paths (or --all).
    Add {
        /// Paths.
        #[arg(required_unless_present = "all")]
        paths: Vec<String>,
        /// Everything, new files and deletions included.
        #[arg(short = 'A', long)]
        all: bool,
    },
    /// Unstage paths (or --all); the working tree is not touched.
    Reset {
        /// Paths.
        #[arg(required_unless_present = "all")]
        paths: Vec<String>,
        /// Everything.
        #[arg(long)]
        all: bool,
    },
    /// Commit the staged changes.
    Commit {
        /// The message.
        #[arg(short, long)]
        message: String,
        /// Replace the last commit instead.
        #[arg(long)]
        amend: bool,
    },
    /// Download from a remote.
    Fetch {
        /// Remote (default: the branch's upstream remote, else origin).
        remote: Option<String>,
    },
    /// Fetch and integrate the upstream (fast-forward only unless --merge).
    Pull {
        /// Remote (default: the upstream's).
        remote: Option<String>,
        /// Merge when histories diverged; conflicts stay in the working
        /// tree and are listed.
        #[arg(long)]
        merge: bool,
    },
    /// Upload a branch.
    Push {
        /// Remote (default: the upstream's, else origin).
        remote: Option<String>,
        /// Branch (default: the current one).
        branch: Option<String>,
        /// Record the remote branch as the upstream.
        #[arg(short = 'u', long)]
        set_upstream: bool,
        /// Overwrite the remote branch even when it is not an ancestor.
        #[arg(long)]
        force: bool,
    },
}
