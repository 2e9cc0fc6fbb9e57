// A test service with what Echo lacks: a declared exception, a void method and a one-way method.
namespace java octo.idl.test

exception Refused {
  1: string reason
}

service Greeter {
  string greet(1: string name) throws (1: Refused refused)
  void touch(1: i32 n)
  oneway void note(1: string text)
}
