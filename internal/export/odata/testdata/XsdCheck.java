// Validates CSDL XML (stdin) against the OASIS EDMX/EDM XML schemas
// (argument: path to edmx.xsd, which imports edm.xsd). Prints every
// warning and error on stderr; exits 1 if there was any.
import java.io.File;
import java.util.ArrayList;
import java.util.List;
import javax.xml.XMLConstants;
import javax.xml.transform.stream.StreamSource;
import javax.xml.validation.SchemaFactory;
import javax.xml.validation.Validator;
import org.xml.sax.ErrorHandler;
import org.xml.sax.SAXParseException;

public class XsdCheck {
  public static void main(String[] args) throws Exception {
    List<String> problems = new ArrayList<>();
    ErrorHandler h = new ErrorHandler() {
      public void warning(SAXParseException e) { problems.add("warning: " + e.getLineNumber() + ": " + e.getMessage()); }
      public void error(SAXParseException e) { problems.add("error: " + e.getLineNumber() + ": " + e.getMessage()); }
      public void fatalError(SAXParseException e) { problems.add("fatal: " + e.getLineNumber() + ": " + e.getMessage()); }
    };
    SchemaFactory f = SchemaFactory.newInstance(XMLConstants.W3C_XML_SCHEMA_NS_URI);
    f.setErrorHandler(h);
    Validator v = f.newSchema(new File(args[0])).newValidator();
    v.setErrorHandler(h);
    try {
      v.validate(new StreamSource(System.in));
    } catch (SAXParseException e) {
      // already reported through the handler
    }
    for (String p : problems) System.err.println(p);
    System.exit(problems.isEmpty() ? 0 : 1);
  }
}
