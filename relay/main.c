/* main.c: outboxd start-up and shutdown. (being written) */
#include "config.h"
#include <stdio.h>
int main(void) { return 0; }
