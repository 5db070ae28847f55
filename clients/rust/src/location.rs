//! Where the agent's socket lives, and the environment variables that
//! point a client elsewhere: `omnipanel-paths`, the one copy of these rules
//! that the agent (which creates the socket) uses too.

pub use omnipanel_paths::{
    ADDR_ENV, CA_CERT_ENV, CONFIRMATION_ENV, SOCKET_ENV, TOKEN_ENV, current_uid, runtime_dir,
    socket_path,
};
