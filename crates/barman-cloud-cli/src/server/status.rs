//! `barman status SERVER...` (or `all`): each server's status lines
//! (`barman_cloud::server::status`) written as Barman's console writer (`Server <name>:`
//! then `\t<description>: <message>`) or JSON writer (`{"<server>": {"<key>":
//! {"description": ..., "message": ...}}}`). Inactive and disabled servers are shown too,
//! unknown names are errors.

use std::collections::BTreeMap;

use barman_cloud::catalog::{PyDict, PyValue};
use barman_cloud::server::config::Config;
use barman_cloud::server::status::server_status;

use super::args::Format;
use super::check::{runtime, select_servers};
use super::emit;
use super::output::Output;

pub(super) fn status_command(config: &Config, names: &[String], out: &mut Output) -> u8 {
    let servers = match select_servers(config, names, false, out) {
        Ok(servers) => servers,
        Err(code) => return code,
    };
    let runtime = runtime();
    for (name, server) in servers {
        let Some(mut server) = server else {
            out.error(&format!("Unknown server '{name}'"), "barman.cli");
            continue;
        };
        emit(server.initialise(), out);
        let lines = runtime.block_on(server_status(&server));
        match out.format {
            Format::Console => {
                out.info(&format!("Server {name}:"));
                for line in &lines {
                    out.info(&format!("\t{}: {}", line.description, line.message));
                }
            }
            Format::Json => {
                // Keys sorted, as Barman's `json.dumps(sort_keys=True)`.
                let mut sorted = BTreeMap::new();
                for line in lines {
                    let mut entry = PyDict::new();
                    entry.set("description", PyValue::str(line.description));
                    entry.set("message", PyValue::str(line.message));
                    sorted.insert(line.key, PyValue::Dict(entry));
                }
                let mut dict = PyDict::new();
                for (key, value) in sorted {
                    dict.set(key, value);
                }
                out.json_result(&name, PyValue::Dict(dict));
            }
        }
    }
    out.close()
}
