// The reference service of benchmarks and interop tests (../shared/PROTOCOL.md section 6).
namespace java octo.idl
namespace py octo_idl.echo
namespace cpp octo_idl

service Echo {
  string echo(1: string message)
}
