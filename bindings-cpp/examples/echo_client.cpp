// placeholder until the client C ABI lands
int main() { return 0; }
